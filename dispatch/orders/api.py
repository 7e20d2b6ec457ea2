"""Service request and offer endpoints of API.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session
from starlette.types import ASGIApp

from dispatch.core import audit
from dispatch.core.auth import CurrentPrincipal, Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.hotpaths import HotCall, HotRoute, NotHot
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

INTAKE_ROLES = frozenset({Role.OPERATOR, Role.FAMILY, Role.ADMIN})
ACCEPT_ROLES = frozenset({Role.PROVIDER})
Intake = Annotated[Principal, require_roles(*INTAKE_ROLES)]
Dispatcher = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN)]
Canceller = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN, Role.FAMILY)]
ProviderOnly = Annotated[Principal, require_roles(*ACCEPT_ROLES)]
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
    transaction and answers each request once its transaction committed. (Well-formed
    requests come in the short way, `HOT_ROUTES` below; this route answers the others.)"""
    status, read = await take(request.app, principal, request_in, idempotency_key, audit.client_of(request))
    response.status_code = status
    return read


async def take(
    app: ASGIApp, principal: Principal, request_in: RequestCreate, key: str | None, client: str
) -> tuple[int, RequestRead]:
    """The intake's work, whichever way the request came in: 202 and the request taken, or
    200 and the first answer again for a known Idempotency-Key; a DomainError otherwise."""
    batcher: IntakeBatcher = app.state.intake  # type: ignore[attr-defined]
    outcome = await batcher.submit(IntakeItem(principal, request_in, key, client=client))
    if outcome.error is not None:
        raise outcome.error
    assert outcome.read is not None
    return (200 if outcome.replayed else 202), outcome.read


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
    return await accept(http.app, principal, offer_id, audit.client_of(http))


async def accept(app: ASGIApp, principal: Principal, offer_id: int, client: str) -> RequestRead:
    batcher: AcceptBatcher = app.state.accepts  # type: ignore[attr-defined]
    read: RequestRead = await batcher.submit(AcceptItem(principal, offer_id, client))
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


# ---- the short way in (core/hotpaths.py) for the two routes that carry the load -----------


async def _take_hot(call: HotCall) -> tuple[int, BaseModel]:
    try:
        request_in = RequestCreate.model_validate(call.json())
    except ValidationError:
        raise NotHot from None  # FastAPI answers 422 with its own field errors
    return await take(call.app, call.principal, request_in, call.header(b"idempotency-key"), call.client)


async def _accept_hot(call: HotCall) -> tuple[int, BaseModel]:
    return 200, await accept(call.app, call.principal, call.ids["offer_id"], call.client)


HOT_ROUTES = (
    HotRoute("POST", "/api/requests", INTAKE_ROLES, _take_hot),
    HotRoute("POST", "/api/offers/{offer_id}/accept", ACCEPT_ROLES, _accept_hot),
)
