"""Service request services: intake (with idempotency keys), reads in scope, cancel, manual dispatch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import bindparam
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role
from dispatch.core.clock import utcnow
from dispatch.core.errors import Conflict, NotFound
from dispatch.core.events import Event, lock_event_order
from dispatch.elders import service as elder_service
from dispatch.matching import capacity
from dispatch.matching.core import Usage, pick_caregiver, provider_kinds_for
from dispatch.matching.service import request_info
from dispatch.orders import intake, offers
from dispatch.orders.lifecycle import RequestStatus, transition
from dispatch.orders.models import (
    Offer,
    OfferStatus,
    ServiceRequest,
)
from dispatch.orders.schemas import (
    AssignBody,
    RequestCreate,
    RequestDetailsRead,
    RequestRead,
    TimelineEntry,
)
from services.models import Caregiver, Provider

# ---- intake -----------------------------------------------------------------------------


def create_request(
    *, session: Session, principal: Principal, request_in: RequestCreate, idempotency_key: str | None = None
) -> tuple[RequestRead, bool]:
    """Commit-ready intake of one request: the request, its first event, its idempotency record
    and the outbox row that wakes the matcher, in the caller's transaction. Returns
    (request, replayed). The API takes requests in batches through the same code (intake.py)."""
    outcome = intake.take_requests(session, [intake.IntakeItem(principal, request_in, idempotency_key)])[0]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.read is not None
    return outcome.read, outcome.replayed


# ---- reads in scope ---------------------------------------------------------------------


def _scoped(stmt, session: Session, principal: Principal):  # type: ignore[no-untyped-def]
    if principal.is_staff:
        return stmt
    if principal.role == Role.FAMILY:
        elder_ids = elder_service.linked_elder_ids(session=session, user_id=principal.id)
        return stmt.where(col(ServiceRequest.elder_id).in_(elder_ids))
    offered = select(Offer.request_id).where(
        Offer.provider_id == principal.provider_id, col(Offer.status) == OfferStatus.PENDING
    )
    return stmt.where(
        (col(ServiceRequest.provider_id) == principal.provider_id) | col(ServiceRequest.id).in_(offered)
    )


def get_request(*, session: Session, principal: Principal, request_id: int) -> ServiceRequest:
    """The request if in the caller's scope; unknown and foreign ids answer alike."""
    stmt = _scoped(select(ServiceRequest).where(ServiceRequest.id == request_id), session, principal)
    request = session.exec(stmt).first()
    if request is None:
        raise NotFound(f"request {request_id} not found")
    return request


def list_requests(
    *,
    session: Session,
    principal: Principal,
    status: str | None = None,
    kind: str | None = None,
    township: str | None = None,
    elder_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[ServiceRequest]:
    stmt = select(ServiceRequest)
    for column, value in (
        (ServiceRequest.status, status),
        (ServiceRequest.kind, kind),
        (ServiceRequest.township, township),
        (ServiceRequest.elder_id, elder_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    stmt = _scoped(stmt, session, principal)
    return session.exec(
        stmt.order_by(col(ServiceRequest.created_at).desc(), col(ServiceRequest.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()


def elder_ids_of(session: Session, request_ids: Sequence[int]) -> set[int]:
    """The elders these requests are for (the audit log names elders, not requests)."""
    if not request_ids:
        return set()
    stmt = select(ServiceRequest.elder_id).where(col(ServiceRequest.id).in_(request_ids))
    return set(session.exec(stmt).all())


def request_reads(session: Session, requests: Sequence[ServiceRequest]) -> list[RequestRead]:
    """API shapes with their timelines, read in one query."""
    timelines = timelines_of(session, [r.id for r in requests if r.id is not None])
    return [request_read(r, timelines[r.id or 0]) for r in requests]


# Built once, the ids bound (expanding): built per call, SQLAlchemy generated its cache key
# each time (bench/api_cpu.py: this and the other statements of an accept batch built once,
# see the README's Performance section).
_TIMELINES = (
    sql_select(col(Event.request_id), col(Event.seq), col(Event.type), col(Event.status), col(Event.at))
    .where(col(Event.request_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(Event.seq))
)


def timelines_of(session: Session, request_ids: Sequence[int]) -> dict[int, list[TimelineEntry]]:
    """Each request's events, in order (one query)."""
    timelines: dict[int, list[TimelineEntry]] = defaultdict(list)
    if request_ids:
        session.flush()  # what the ORM's execute would do first (nothing when nothing is pending)
        rows = session.connection().execute(_TIMELINES, {"ids": sorted(set(request_ids))})
        for request_id, seq, type_, status, at in rows:
            timelines[request_id or 0].append(TimelineEntry(seq=seq, type=type_, status=status, at=at))
    return timelines


def request_read(r: ServiceRequest, timeline: list[TimelineEntry]) -> RequestRead:
    """The API shape of a request, given its timeline."""
    return RequestRead(
        id=r.id or 0,
        elder_id=r.elder_id,
        kind=r.kind,  # type: ignore[arg-type]
        priority=r.priority,  # type: ignore[arg-type]
        channel=r.channel,  # type: ignore[arg-type]
        status=r.status,  # type: ignore[arg-type]
        provider_id=r.provider_id,
        caregiver_id=r.caregiver_id,
        created_at=r.created_at,
        updated_at=r.updated_at,
        timeline=timeline,
        details=RequestDetailsRead.model_validate(r.details),
        window_start=r.window_start,
        window_end=r.window_end,
        note=r.note,
        township=r.township,
        escalation_reason=r.escalation_reason,
        due_at=r.due_at,
    )


# ---- changes by people ------------------------------------------------------------------


def cancel_request(*, session: Session, principal: Principal, request_id: int, reason: str) -> ServiceRequest:
    lock_event_order(session)  # read after it: an offer made meanwhile is seen and withdrawn, not a 409
    request = get_request(session=session, principal=principal, request_id=request_id)
    if principal.role not in (Role.OPERATOR, Role.ADMIN, Role.FAMILY):
        raise NotFound(f"request {request_id} not found")
    offers.withdraw_pending(session, request_id=request_id, reason="request cancelled")
    transition(session, request, RequestStatus.CANCELLED, data={"reason": reason, "by": principal.role.value})
    return request


def assign_manually(
    *, session: Session, principal: Principal, request_id: int, body: AssignBody
) -> ServiceRequest:
    """An operator dispatches by hand (also out of `escalated`). Capacity still holds.

    The locks first, then the reads (core/events.py): the provider's row, then the event-order
    lock, which every change of a request or an offer takes first. What is read after them
    stays as read until the commit, so an offer the matcher made a moment ago is withdrawn
    here rather than failing the operator's compare-and-set with a 409 (PostgreSQL; SQLite's
    one writer gives the same)."""
    capacity.lock_providers(session, [body.provider_id])
    lock_event_order(session)
    request = get_request(session=session, principal=principal, request_id=request_id)
    if request.status not in (RequestStatus.QUEUED, RequestStatus.OFFERED, RequestStatus.ESCALATED):
        raise Conflict(
            f"request {request_id} is {request.status}; only an unplaced request can be dispatched"
        )
    provider = session.get(Provider, body.provider_id)
    if provider is None or not provider.active:
        raise NotFound(f"provider {body.provider_id} not found or inactive")
    if body.caregiver_id is not None:
        caregiver = session.get(Caregiver, body.caregiver_id)
        if caregiver is None or caregiver.provider_id != provider.id:
            raise Conflict(f"caregiver {body.caregiver_id} does not work for provider {provider.id}")
    elder = elder_service.get_elder(session=session, principal=principal, elder_id=request.elder_id)
    info = request_info(request, elder.lat, elder.lon, set())
    if provider.kind not in provider_kinds_for(info):
        raise Conflict(f"a {provider.kind} provider cannot serve a {request.kind} request")
    offers.withdraw_pending(session, request_id=request_id, reason="dispatched by an operator")
    pinfo = capacity.load_providers(session, [body.provider_id])[0]
    usage = Usage({pinfo.id: pinfo}, capacity.load_holdings(session, [body.provider_id]))
    if usage.left(pinfo, info) <= 0:
        raise Conflict(f"provider {provider.id} has no capacity left for this request")
    caregiver_id = body.caregiver_id
    if caregiver_id is None:
        caregiver_id = pick_caregiver(pinfo, info, usage)[1]
    now = utcnow()
    offer = Offer(
        request_id=request_id,
        provider_id=body.provider_id,
        caregiver_id=caregiver_id,
        status=OfferStatus.ACCEPTED,
        expires_at=now,
        responded_at=now,
        manual=True,
        reason=f"dispatched by {principal.username}",
    )
    session.add(offer)
    session.flush()
    transition(
        session,
        request,
        RequestStatus.ASSIGNED,
        provider_id=body.provider_id,
        caregiver_id=caregiver_id,
        assigned_at=now,
        data={
            "offer_id": offer.id,
            "provider_id": body.provider_id,
            "caregiver_id": caregiver_id,
            "manual": True,
        },
    )
    return request
