"""The family page's API: only the elders linked to the account, with the elder's consent
applied on the server. Every read is audited like a read of the elder's record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath, IdQuery, Offset
from dispatch.visits import family
from dispatch.visits.schemas import FamilyOverview, FamilyRequestRead

router = APIRouter(prefix="/api/family", tags=["family"])

Family = Annotated[Principal, require_roles(Role.FAMILY)]


def _audit(request: Request, principal: Principal, elder_ids: set[int]) -> None:
    audit.record_read(request, principal, elder_ids, "family view")


@router.get("/overview", response_model=FamilyOverview)
def get_overview(request: Request, session: SessionDep, principal: Family) -> FamilyOverview:
    """The linked elders, their latest requests with timelines, and `since` for the websocket."""
    overview = family.overview(session=session, principal=principal)
    _audit(request, principal, {e.id for e in overview.elders})
    return overview


@router.get("/requests", response_model=list[FamilyRequestRead])
def list_requests(
    request: Request,
    session: SessionDep,
    principal: Family,
    elder_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Offset = 0,
) -> list[FamilyRequestRead]:
    """Requests of the linked elders (or of one), newest first. An unlinked elder is 404."""
    rows = family.list_requests(
        session=session, principal=principal, elder_id=elder_id, limit=limit, offset=offset
    )
    _audit(request, principal, {r.elder_id for r in rows})
    return rows


@router.get("/requests/{request_id}", response_model=FamilyRequestRead)
def get_request(
    request_id: IdPath, request: Request, session: SessionDep, principal: Family
) -> FamilyRequestRead:
    read = family.get_request(session=session, principal=principal, request_id=request_id)
    _audit(request, principal, {read.elder_id})
    return read
