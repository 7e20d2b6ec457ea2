"""The family page's API: only the elders linked to the account, with the elder's consent
applied on the server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath, IdQuery, Offset
from dispatch.visits import family
from dispatch.visits.schemas import FamilyOverview, FamilyRequestRead

router = APIRouter(prefix="/api/family", tags=["family"])

Family = Annotated[Principal, require_roles(Role.FAMILY)]


@router.get("/overview", response_model=FamilyOverview)
def get_overview(session: SessionDep, principal: Family) -> FamilyOverview:
    """The linked elders, their latest requests with timelines, and `since` for the websocket."""
    return family.overview(session=session, principal=principal)


@router.get("/requests", response_model=list[FamilyRequestRead])
def list_requests(
    session: SessionDep,
    principal: Family,
    elder_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> list[FamilyRequestRead]:
    """Requests of the linked elders (or of one), newest first. An unlinked elder is 404."""
    return family.list_requests(
        session=session, principal=principal, elder_id=elder_id, limit=limit, offset=offset
    )


@router.get("/requests/{request_id}", response_model=FamilyRequestRead)
def get_request(request_id: IdPath, session: SessionDep, principal: Family) -> FamilyRequestRead:
    return family.get_request(session=session, principal=principal, request_id=request_id)
