"""The provider page's API (`/provider`): offers, the day's jobs, the elder's phone on demand.
Every answer carrying elder data is audited, like every read of an elder's record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath
from dispatch.field import service as field_service
from dispatch.field.schemas import FieldDay, FieldOffer, PhoneRead
from dispatch.visits.schemas import LocalDay

router = APIRouter(prefix="/api/field", tags=["field"])

ProviderOnly = Annotated[Principal, require_roles(Role.PROVIDER)]


@router.get("/today", response_model=FieldDay)
def get_today(
    request: Request,
    session: SessionDep,
    principal: ProviderOnly,
    day: Annotated[LocalDay | None, Query(description="A local day; today by default.")] = None,
) -> FieldDay:
    """Open jobs in time order and the day's closed ones, the canteen's meal counts per slot, the
    day-care center's attendance, and `since` for the websocket."""
    day_read, elder_ids = field_service.today(session=session, principal=principal, day=day)
    audit.record_read(request, principal, elder_ids, "provider day")
    return day_read


@router.get("/offers", response_model=list[FieldOffer])
def list_offers(request: Request, session: SessionDep, principal: ProviderOnly) -> list[FieldOffer]:
    """Pending offers of this provider (of this caregiver, for a caregiver's account), and those
    declined, expired or withdrawn in the last 15 minutes, with their status and reason."""
    offers, elder_ids = field_service.list_offers(session=session, principal=principal)
    audit.record_read(request, principal, elder_ids, "provider offers")
    return offers


@router.post("/jobs/{request_id}/phone", response_model=PhoneRead)
def reveal_phone(
    request_id: IdPath, request: Request, session: SessionDep, principal: ProviderOnly
) -> PhoneRead:
    """The elder's full number, to call: for an assigned or in-service job of this account only
    (404 for any other). Every reveal is audited."""
    return field_service.reveal_phone(
        session=session, principal=principal, request_id=request_id, client=audit.client_of(request)
    )
