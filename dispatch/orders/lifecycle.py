"""The request state machine: one table of allowed transitions and one transition() that
refuses anything else, applies the change as a compare-and-set, and writes the event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from dispatch.core import audit
from dispatch.core.auth import Principal
from dispatch.core.bulk import execute_many
from dispatch.core.clock import utcnow
from dispatch.core.errors import Conflict, InvalidTransition
from dispatch.core.events import Emitted, Event, emit, insert_events, lock_event_order
from dispatch.notify import rules as sms_rules
from dispatch.notify.models import OwedText
from dispatch.notify.service import queue_sms_many
from dispatch.orders.models import ServiceRequest


class RequestStatus(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    IN_SERVICE = "in_service"
    COMPLETED = "completed"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"


S = RequestStatus

ALLOWED: dict[RequestStatus, frozenset[RequestStatus]] = {
    # queued -> assigned is an operator's manual dispatch before the matcher got to it.
    S.QUEUED: frozenset({S.OFFERED, S.ESCALATED, S.ASSIGNED, S.CANCELLED}),
    S.OFFERED: frozenset({S.ASSIGNED, S.QUEUED, S.ESCALATED, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.IN_SERVICE, S.CANCELLED}),
    S.IN_SERVICE: frozenset({S.COMPLETED, S.CANCELLED}),
    S.ESCALATED: frozenset({S.ASSIGNED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

OPEN_STATUSES = frozenset(s for s, targets in ALLOWED.items() if targets)
TERMINAL_STATUSES = frozenset(S) - OPEN_STATUSES
# Statuses in which nobody is yet bound to serve the request.
UNPLACED_STATUSES = frozenset({S.QUEUED, S.OFFERED})

# The event each arrival status writes; offered -> queued names its cause (declined/expired).
EVENT_TYPES: dict[RequestStatus, str] = {
    S.QUEUED: "request.created",
    S.OFFERED: "request.offered",
    S.ASSIGNED: "request.assigned",
    S.IN_SERVICE: "request.in_service",
    S.COMPLETED: "request.completed",
    S.ESCALATED: "request.escalated",
    S.CANCELLED: "request.cancelled",
}
REQUEUE_EVENTS = frozenset({"request.declined", "request.expired"})


def can_transition(current: str, target: RequestStatus) -> bool:
    return target in ALLOWED.get(RequestStatus(current), frozenset())


def transition(
    session: Session,
    request: ServiceRequest,
    target: RequestStatus,
    *,
    event_type: str | None = None,
    event_provider_id: int | None = None,
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> Event:
    """Move `request` to `target` or raise. The UPDATE is conditional on the status and version
    this caller read, so of two concurrent callers exactly one wins; the loser gets Conflict
    and, like a refused transition, leaves no event."""
    current = RequestStatus(request.status)
    if not can_transition(current, target):
        raise InvalidTransition(f"request {request.id} cannot go from {current.value} to {target.value}")
    if target == S.QUEUED and event_type not in REQUEUE_EVENTS:
        raise InvalidTransition("a return to queued must say why: request.declined or request.expired")
    lock_event_order(session)  # before the request's row: the one lock order (core/events.py)
    now = utcnow()
    values: dict[str, Any] = {
        "status": target.value,
        "version": request.version + 1,
        "updated_at": now,
        **changes,
    }
    if target in TERMINAL_STATUSES:
        values.setdefault("closed_at", now)
    result = session.execute(
        update(ServiceRequest)
        .where(
            col(ServiceRequest.id) == request.id,
            col(ServiceRequest.status) == current.value,
            col(ServiceRequest.version) == request.version,
        )
        .values(**values)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict(f"request {request.id} was changed by someone else; reload and retry")
    for key, value in values.items():
        set_committed_value(request, key, value)
    event = emit(
        session,
        event_type or EVENT_TYPES[target],
        request_id=request.id,
        elder_id=request.elder_id,
        provider_id=event_provider_id if event_provider_id is not None else request.provider_id,
        status=target.value,
        data=data,
    )
    sms_rules.after_transition(session, request, event)  # who is texted about this change
    return event


def transition_many(
    session: Session,
    requests: Sequence[ServiceRequest],
    target: RequestStatus,
    *,
    data: Callable[[ServiceRequest], dict[str, Any]],
    event_provider_id: Callable[[ServiceRequest], int | None],
    before_events: Callable[[list[ServiceRequest]], None] | None = None,
    changes: Callable[[ServiceRequest], dict[str, Any]] | None = None,
    actor: Callable[[ServiceRequest], tuple[Principal | None, str]] | None = None,
    texts: Callable[[list[tuple[ServiceRequest, Emitted]]], Sequence[OwedText]] | None = None,
) -> list[tuple[ServiceRequest, Emitted]]:
    """transition() for many requests at once, set-wise: one compare-and-set UPDATE (each row
    on the status and version this caller read), one insert of the events, one of the audit
    rows, the texts in bulk. Returns the (request, event) pairs that won; a request changed by
    someone else since it was read is left out, untouched and without an event.
    `before_events(winners)` writes what the events refer to (the matcher's offers) once the
    winners are known. `changes(request)` sets other columns row by row (the accepts' provider,
    caregiver and time), `actor(request)` names who made each change in the audit log (else
    the session's owner). `texts(pairs)` gives the texts the winners owe, prepared before the
    write transaction (else notify.rules reads what it needs here). Only for forward moves
    (queued -> offered, offered -> assigned)."""
    if not requests:
        return []
    current = RequestStatus(requests[0].status)
    if target in TERMINAL_STATUSES or target == S.QUEUED:
        raise InvalidTransition(f"transition_many does not move requests to {target.value}")
    for request in requests:
        if request.status != current or not can_transition(current, target):
            raise InvalidTransition(f"request {request.id} cannot go from {request.status} to {target.value}")
    lock_event_order(session)
    now = utcnow()
    per_row = {r.id: changes(r) for r in requests} if changes else {}
    won = _compare_and_set(session, requests, current, target, now, per_row)
    winners = [r for r in requests if r.id in won]
    if not winners:
        return []
    for request in winners:
        for key, value in (("status", target.value), ("version", request.version + 1), ("updated_at", now)):
            set_committed_value(request, key, value)
        for key, value in per_row.get(request.id, {}).items():
            set_committed_value(request, key, value)
    if before_events is not None:
        before_events(winners)
    rows: list[dict[str, Any]] = [
        {
            "type": EVENT_TYPES[target],
            "request_id": r.id,
            "elder_id": r.elder_id,
            "provider_id": event_provider_id(r),
            "status": target.value,
            "at": now,
            "data": data(r),
        }
        for r in winners
    ]
    seqs = insert_events(session, rows)
    events = [Emitted(seq=seq, **row) for seq, row in zip(seqs, rows, strict=True)]
    audit.record_changes(
        session,
        [
            (*(actor(r) if actor else (None, "")), r.elder_id, e.type, f"request {r.id} event {e.seq}")
            for r, e in zip(winners, events, strict=True)
        ],
    )
    pairs = list(zip(winners, events, strict=True))
    if texts is None:
        sms_rules.after_transitions(session, pairs)
    else:
        queue_sms_many(session, texts(pairs))
    return pairs


_REQUESTS = ServiceRequest.__table__  # type: ignore[attr-defined]
# Statements built once (per shape), their values bound: built per call, SQLAlchemy generated
# their cache keys each time, in the write lock of every accept and matcher batch.
_CAS: dict[tuple[str, str, tuple[str, ...]], Update] = {}
_VERSIONS = select(_REQUESTS.c.id, _REQUESTS.c.version, _REQUESTS.c.status, _REQUESTS.c.updated_at).where(
    _REQUESTS.c.id.in_(bindparam("ids", expanding=True))
)


def _compare_and_set_statement(
    current: RequestStatus, target: RequestStatus, columns: tuple[str, ...]
) -> Update:
    """UPDATE ... WHERE id, version and status are those read, SET the target status, the next
    version, the time and `columns`, all bound (b_id, b_version, b_now, b_<column>)."""
    shape = (current.value, target.value, columns)
    if shape not in _CAS:
        c = _REQUESTS.c
        _CAS[shape] = (
            _REQUESTS.update()
            .where(c.id == bindparam("b_id"), c.version == bindparam("b_version"), c.status == current.value)
            .values(
                status=target.value,
                version=c.version + 1,
                updated_at=bindparam("b_now", type_=c.updated_at.type),
                **{key: bindparam(f"b_{key}", type_=c[key].type) for key in columns},
            )
        )
    return _CAS[shape]


def _compare_and_set(
    session: Session,
    requests: Sequence[ServiceRequest],
    current: RequestStatus,
    target: RequestStatus,
    now: datetime,
    per_row: dict[int | None, dict[str, Any]],
) -> set[int | None]:
    """Move each request that is still at the status and version this caller read; the ids
    that moved. One UPDATE by primary key executed for every row (executemany: compiled once,
    looped in the driver), its per-row columns bound like the others. Where fewer rows moved
    than were asked (someone else changed one), the winners are those now carrying this
    update's version, status and exact timestamp."""
    columns = sorted({key for values in per_row.values() for key in values})
    if any(set(values) != set(columns) for values in per_row.values()) or (
        per_row and len(per_row) != len(requests)
    ):
        raise ValueError("transition_many: changes() must give the same columns for every request")
    stmt = _compare_and_set_statement(current, target, tuple(columns))
    params = [
        {"b_id": r.id, "b_version": r.version, "b_now": now, **{f"b_{k}": per_row[r.id][k] for k in columns}}
        for r in requests
    ]
    moved = execute_many(session.connection(), stmt, params)
    if moved == len(requests):
        return {r.id for r in requests}
    expected = {r.id: r.version + 1 for r in requests}
    rows = session.connection().execute(_VERSIONS, {"ids": list(expected)})
    return {
        row.id
        for row in rows
        if row.version == expected[row.id] and row.status == target.value and row.updated_at == now
    }
