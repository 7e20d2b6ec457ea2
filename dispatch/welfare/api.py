"""The welfare guarantee's "who is overdue" list, for the console and the manager page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.clock import utcnow
from dispatch.core.db import SessionDep
from dispatch.core.validation import Township
from dispatch.welfare.overdue import overdue_list
from dispatch.welfare.schemas import OverdueList

router = APIRouter(prefix="/api/welfare", tags=["welfare"])
Staff = Annotated[Principal, require_roles(Role.OPERATOR, Role.MANAGER, Role.ADMIN)]


@router.get("/overdue", response_model=OverdueList)
def get_overdue(
    http: Request, session: SessionDep, principal: Staff, township: Township | None = None
) -> OverdueList:
    """Elders living alone or under 特困 support past their visit rhythm, and every elder with a
    welfare check still open, most overdue first, with counts by township."""
    listed = overdue_list(session, now=utcnow(), township=township)
    audit.record_read(http, principal, (e.elder_id for e in listed.elders), "who is overdue")
    return listed
