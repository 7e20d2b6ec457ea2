"""Service request services: intake (with idempotency keys), reads in scope, cancel, manual dispatch."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, time, timedelta

from sqlalchemy import text
from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role
from dispatch.core.clock import LOCAL_TZ, local, utcnow
from dispatch.core.config import get_settings
from dispatch.core.errors import BadRequest, Conflict, NotFound, Unprocessable
from dispatch.core.events import Event, emit
from dispatch.elders import service as elder_service
from dispatch.matching import capacity
from dispatch.matching.core import Usage, pick_caregiver, provider_kinds_for
from dispatch.matching.service import request_info
from dispatch.notify import rules as sms_rules
from dispatch.orders import offers
from dispatch.orders.lifecycle import RequestStatus, transition
from dispatch.orders.models import (
    Channel,
    IdempotencyRecord,
    Offer,
    OfferStatus,
    Priority,
    RequestKind,
    ServiceRequest,
)
from dispatch.orders.schemas import (
    AssignBody,
    RequestCreate,
    RequestDetails,
    RequestDetailsRead,
    RequestRead,
    TimelineEntry,
)
from services.models import Caregiver, Provider

_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
IDEMPOTENCY_KEEP = timedelta(hours=48)
_SLOTS = {"lunch": (time(11, 0), time(12, 30)), "dinner": (time(17, 0), time(18, 30))}


# ---- intake -----------------------------------------------------------------------------


def default_window(kind: RequestKind, details: RequestDetails, now: datetime) -> tuple[datetime, datetime]:
    """The service window an operator would pick: today's slot for a meal (tomorrow's once
    it is over), today's opening hours for day care, the next two hours for home care."""
    today = local(now).date()

    def span(day_offset: int, start: time, end: time) -> tuple[datetime, datetime]:
        day = today + timedelta(days=day_offset)
        return datetime.combine(day, start, LOCAL_TZ), datetime.combine(day, end, LOCAL_TZ)

    if kind == RequestKind.MEAL:
        start, end = _SLOTS[details.slot or "lunch"]
        window = span(0, start, end)
        return window if window[1] > now else span(1, start, end)
    if kind == RequestKind.DAY_CARE:
        window = span(0, time(8, 0), time(17, 0))
        return window if window[1] - timedelta(hours=2) > now else span(1, time(8, 0), time(17, 0))
    if kind == RequestKind.EMERGENCY:
        return now, now + timedelta(minutes=30)
    return now, now + timedelta(hours=2)


def _fingerprint(request_in: RequestCreate) -> str:
    canonical = json.dumps(request_in.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(session: Session, *, principal: Principal, key: str, fingerprint: str) -> RequestRead | None:
    """The first answer for this key, or None if the key is new. Same key, other body: 422."""
    if session.get_bind().dialect.name == "postgresql":
        # A concurrent first use of the key holds this lock until it commits: answer 409.
        got = session.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": f"{principal.id}:{key}"}
        ).scalar()
        if not got:
            raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
    record = session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == principal.id, IdempotencyRecord.key == key
        )
    ).first()
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise Unprocessable("this Idempotency-Key was used with a different request body")
    return RequestRead.model_validate(record.response)


def create_request(
    *, session: Session, principal: Principal, request_in: RequestCreate, idempotency_key: str | None = None
) -> tuple[RequestRead, bool]:
    """Commit-ready intake: the request, its first event and the outbox row that wakes the
    matcher, all in the caller's transaction. Returns (request, replayed)."""
    fingerprint = _fingerprint(request_in)
    if idempotency_key is not None:
        if not _KEY_PATTERN.match(idempotency_key):
            raise BadRequest("Idempotency-Key must be 1-255 visible ASCII characters")
        replay = _replay(session, principal=principal, key=idempotency_key, fingerprint=fingerprint)
        if replay is not None:
            return replay, True
    elder = elder_service.get_elder(session=session, principal=principal, elder_id=request_in.elder_id)
    if elder.deceased_on is not None:
        raise Conflict(f"elder {elder.id} is recorded as deceased on {elder.deceased_on.isoformat()}")
    request = _new_request(principal, request_in, township=elder.township)
    session.add(request)
    session.flush()
    emit(
        session,
        "request.created",
        request_id=request.id,
        elder_id=request.elder_id,
        status=RequestStatus.QUEUED,
        data={
            "kind": request.kind,
            "priority": request.priority,
            "township": request.township,
            "channel": request.channel,
        },
    )
    sms_rules.after_created(session, request)
    offers.request_matching(session, urgent=request.priority == Priority.URGENT)
    read = request_reads(session, [request])[0]
    if idempotency_key is not None:
        assert request.id is not None
        session.add(
            IdempotencyRecord(
                user_id=principal.id,
                key=idempotency_key,
                fingerprint=fingerprint,
                request_id=request.id,
                response=read.model_dump(mode="json"),
            )
        )
        session.flush()
    return read, False


def _new_request(principal: Principal, request_in: RequestCreate, *, township: str) -> ServiceRequest:
    settings = get_settings()
    now = utcnow()
    if request_in.window_start and request_in.window_end:
        window = (request_in.window_start, request_in.window_end)
    else:
        window = default_window(request_in.kind, request_in.details, now)
    priority = request_in.priority or Priority.NORMAL
    if request_in.kind == RequestKind.EMERGENCY:
        priority = Priority.URGENT
    details = request_in.details.model_dump(exclude_none=True)
    if request_in.kind == RequestKind.MEAL:
        details.setdefault("slot", "lunch")
    channel = request_in.channel or (Channel.APP if principal.role == Role.FAMILY else Channel.HOTLINE)
    sla = settings.urgent_sla_seconds if priority == Priority.URGENT else settings.assign_sla_seconds
    return ServiceRequest(
        elder_id=request_in.elder_id,
        kind=request_in.kind,
        priority=priority,
        channel=channel,
        status=RequestStatus.QUEUED,
        details=details,
        window_start=window[0],
        window_end=window[1],
        note=request_in.note,
        township=township,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
        due_at=now + timedelta(seconds=sla),
    )


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
    ids = [r.id for r in requests]
    timelines: dict[int, list[TimelineEntry]] = defaultdict(list)
    if ids:
        for ev in session.exec(select(Event).where(col(Event.request_id).in_(ids)).order_by(col(Event.seq))):
            assert ev.request_id is not None and ev.seq is not None
            timelines[ev.request_id].append(
                TimelineEntry(seq=ev.seq, type=ev.type, status=ev.status, at=ev.at)
            )
    return [
        RequestRead(
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
            timeline=timelines[r.id or 0],
            details=RequestDetailsRead.model_validate(r.details),
            window_start=r.window_start,
            window_end=r.window_end,
            note=r.note,
            township=r.township,
            escalation_reason=r.escalation_reason,
            due_at=r.due_at,
        )
        for r in requests
    ]


# ---- changes by people ------------------------------------------------------------------


def cancel_request(*, session: Session, principal: Principal, request_id: int, reason: str) -> ServiceRequest:
    request = get_request(session=session, principal=principal, request_id=request_id)
    if principal.role not in (Role.OPERATOR, Role.ADMIN, Role.FAMILY):
        raise NotFound(f"request {request_id} not found")
    offers.withdraw_pending(session, request_id=request_id, reason="request cancelled")
    transition(session, request, RequestStatus.CANCELLED, data={"reason": reason, "by": principal.role.value})
    return request


def assign_manually(
    *, session: Session, principal: Principal, request_id: int, body: AssignBody
) -> ServiceRequest:
    """An operator dispatches by hand (also out of `escalated`). Capacity still holds."""
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
    capacity.lock_providers(session, [body.provider_id])
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
