"""Service request and offer endpoints of API.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from dispatch.core import audit
from dispatch.core.auth import CurrentPrincipal, Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import MAX_INT, IdPath, IdQuery, Offset, Township
from dispatch.core.writer import writer_of
from dispatch.orders import offers as offer_service
from dispatch.orders import service as request_service
from dispatch.orders.accepts import AcceptBatcher, AcceptItem
from dispatch.orders.batcher import IntakeBatcher
from dispatch.orders.intake import IntakeItem
from dispatch.orders.lifecycle import RequestStatus
from dispatch.orders.models import OfferStatus, RequestKind
from dispatch.orders.schemas import AssignBody, CancelBody, DeclineBody, OfferRead, RequestCreate, RequestRead

router = APIRouter(tags=["requests"])

Intake = Annotated[Principal, require_roles(Role.OPERATOR, Role.FAMILY, Role.ADMIN)]
Dispatcher = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN)]
Canceller = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN, Role.FAMILY)]
ProviderOnly = Annotated[Principal, require_roles(Role.PROVIDER)]
OfferReader = Annotated[Principal, require_roles(Role.PROVIDER, Role.OPERATOR, Role.ADMIN, Role.MANAGER)]


@router.post(
    "/api/requests",
    response_model=RequestRead,
    status_code=202,
    responses={200: {"description": "Replay of an earlier request with the same Idempotency-Key"}},
)
async def create_request(
    request_in: RequestCreate,
    request: Request,
    response: Response,
    principal: Intake,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> RequestRead:
    """Take a request: committed with its first event and the job that matches it, answered 202.

    Handed to the process's intake batcher, which commits what arrives together in one
    transaction and answers each request once its transaction committed."""
    batcher: IntakeBatcher = request.app.state.intake
    outcome = await batcher.submit(
        IntakeItem(principal, request_in, idempotency_key, client=audit.client_of(request))
    )
    if outcome.error is not None:
        raise outcome.error
    if outcome.replayed:
        response.status_code = 200
    assert outcome.read is not None
    return outcome.read


@router.get("/api/requests", response_model=list[RequestRead])
def list_requests(
    http: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    status: RequestStatus | None = None,
    kind: RequestKind | None = None,
    township: Township | None = None,
    elder_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> list[RequestRead]:
    """Requests in the caller's scope, newest first."""
    rows = request_service.list_requests(
        session=session,
        principal=principal,
        status=status,
        kind=kind,
        township=township,
        elder_id=elder_id,
        limit=limit,
        offset=offset,
    )
    audit.record_read(http, principal, (r.elder_id for r in rows), "requests")
    return request_service.request_reads(session, rows)


@router.get("/api/requests/{request_id}", response_model=RequestRead)
def get_request(
    request_id: IdPath, http: Request, session: SessionDep, principal: CurrentPrincipal
) -> RequestRead:
    request = request_service.get_request(session=session, principal=principal, request_id=request_id)
    audit.record_read(http, principal, [request.elder_id], f"request {request_id}")
    return request_service.request_reads(session, [request])[0]


@router.post("/api/requests/{request_id}/cancel", response_model=RequestRead)
def cancel_request(
    request_id: IdPath, session: SessionDep, principal: Canceller, body: CancelBody | None = None
) -> RequestRead:
    request = request_service.cancel_request(
        session=session, principal=principal, request_id=request_id, reason=body.reason if body else ""
    )
    return request_service.request_reads(session, [request])[0]


@router.post("/api/requests/{request_id}/assign", response_model=RequestRead)
def assign_request(
    request_id: IdPath, body: AssignBody, session: SessionDep, principal: Dispatcher
) -> RequestRead:
    """Manual dispatch by an operator, also out of `escalated`."""
    request = request_service.assign_manually(
        session=session, principal=principal, request_id=request_id, body=body
    )
    return request_service.request_reads(session, [request])[0]


@router.get("/api/offers", response_model=list[OfferRead])
def list_offers(
    http: Request,
    session: SessionDep,
    principal: OfferReader,
    status: OfferStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[OfferRead]:
    """The caller's provider's offers (staff see all)."""
    rows = offer_service.list_offers(session, principal=principal, status=status, limit=limit, offset=offset)
    reads = offer_service.offer_reads(session, rows)
    # Each offer shows its elder's name, address and phone (masked): a read of the elder's record.
    elders = request_service.elder_ids_of(session, [o.request_id for o in reads])
    audit.record_read(http, principal, elders, "offers")
    return reads


@router.post("/api/offers/{offer_id}/accept", response_model=RequestRead)
async def accept_offer(offer_id: IdPath, http: Request, principal: ProviderOnly) -> RequestRead:
    """Accept: the request becomes `assigned`. An offer no longer pending is 409.

    Handed to the process's accept batcher, which writes the accepts that arrive together
    set-wise in one transaction and answers each once it committed (orders/accepts.py)."""
    batcher: AcceptBatcher = http.app.state.accepts
    read: RequestRead = await batcher.submit(AcceptItem(principal, offer_id, audit.client_of(http)))
    return read


@router.post("/api/offers/{offer_id}/decline", response_model=RequestRead)
async def decline_offer(
    offer_id: IdPath, http: Request, principal: ProviderOnly, body: DeclineBody | None = None
) -> RequestRead:
    """Decline: the request goes to the next candidate (batched like an accept)."""
    reason = body.reason if body else ""

    def work(session: Session) -> RequestRead:
        request = offer_service.decline(session, principal=principal, offer_id=offer_id, reason=reason)
        return request_service.request_reads(session, [request])[0]

    return await writer_of(http).run(work, http)


# ---- matching (issue 8): direct an offer to another caregiver ----------------------------


class CaregiverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    caregiver_id: int = Field(ge=1, le=MAX_INT)


@router.post("/api/offers/{offer_id}/caregiver", response_model=OfferRead)
def direct_offer(
    offer_id: IdPath, body: CaregiverBody, http: Request, session: SessionDep, principal: ProviderOnly
) -> OfferRead:
    """Before accepting, name another of the provider's caregivers for a pending offer. The
    caregiver must have the skills asked, be on shift in the window and have a job to spare
    (409 with the reason otherwise); an account bound to one caregiver may only name itself."""
    offer = offer_service.direct_to_caregiver(
        session, principal=principal, offer_id=offer_id, caregiver_id=body.caregiver_id
    )
    read = offer_service.offer_reads(session, [offer])[0]
    # The answer shows the elder's name, address and phone (masked), as the offers list does;
    # audited in this (writing) transaction: a second writer would wait on SQLite's lock.
    elders = request_service.elder_ids_of(session, [read.request_id])
    audit.record(
        principal=principal,
        action="read",
        elder_ids=elders,
        what="offer",
        client=audit.client_of(http),
        session=session,
    )
    return read
