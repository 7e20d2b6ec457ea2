"""Intake: requests checked, stored and answered in batches, inside the caller's transaction.

Every request is committed with its first event, its idempotency record and the outbox row
that wakes the matcher. Taken one by one that is a dozen statements and a transaction each,
and SQLite has one writer; so the API's batcher (`dispatch/orders/batcher.py`) hands over
everything that arrived while the previous batch was being written, and this module stores
the batch with a few set-wise statements. A request that cannot be taken (an unknown elder,
a key reused with another body) fails alone and leaves nothing behind; the others are stored.
`service.create_request` is the same code with a batch of one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlmodel import Session, col

from dispatch.core import audit
from dispatch.core.auth import Principal, Role
from dispatch.core.bulk import execute_many
from dispatch.core.clock import LOCAL_TZ, as_utc, local, utcnow
from dispatch.core.config import get_settings
from dispatch.core.errors import BadRequest, Conflict, DomainError, NotFound, Unprocessable
from dispatch.core.events import insert_events, lock_event_order
from dispatch.core.inserts import insert_returning_keys
from dispatch.elders.models import Elder, FamilyLink
from dispatch.notify import rules as sms_rules
from dispatch.orders import offers
from dispatch.orders.lifecycle import RequestStatus
from dispatch.orders.models import Channel, IdempotencyRecord, Priority, RequestKind, ServiceRequest
from dispatch.orders.schemas import (
    RequestCreate,
    RequestDetails,
    RequestDetailsRead,
    RequestRead,
    TimelineEntry,
)

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
IDEMPOTENCY_KEEP = timedelta(hours=48)
SLOTS = {"lunch": (time(11, 0), time(12, 30)), "dinner": (time(17, 0), time(18, 30))}


@dataclass(frozen=True)
class IntakeItem:
    principal: Principal
    request_in: RequestCreate
    idempotency_key: str | None = None
    client: str = ""  # the caller's address, for the audit log


@dataclass
class Outcome:
    read: RequestRead | None = None
    replayed: bool = False
    error: DomainError | None = None

    @property
    def decided(self) -> bool:
        return self.read is not None or self.error is not None


def default_window(kind: RequestKind, details: RequestDetails, now: datetime) -> tuple[datetime, datetime]:
    """The service window an operator would pick: today's slot for a meal (tomorrow's once
    it is over), today's opening hours for day care, the next two hours for home care."""
    today = local(now).date()

    def span(day_offset: int, start: time, end: time) -> tuple[datetime, datetime]:
        day = today + timedelta(days=day_offset)
        return datetime.combine(day, start, LOCAL_TZ), datetime.combine(day, end, LOCAL_TZ)

    if kind == RequestKind.MEAL:
        start, end = SLOTS[details.slot or "lunch"]
        window = span(0, start, end)
        return window if window[1] > now else span(1, start, end)
    if kind == RequestKind.DAY_CARE:
        window = span(0, time(8, 0), time(17, 0))
        return window if window[1] - timedelta(hours=2) > now else span(1, time(8, 0), time(17, 0))
    if kind == RequestKind.EMERGENCY:
        return now, now + timedelta(minutes=30)
    return now, now + timedelta(hours=2)


def fingerprint(request_in: RequestCreate) -> str:
    canonical = json.dumps(request_in.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Checked:
    """A batch after its reads: each item's outcome so far (a replay, a refusal) and what the
    others need to be stored."""

    items: Sequence[IntakeItem]
    prints: list[str]
    outcomes: list[Outcome]
    townships: dict[int, str]


def take_requests(session: Session, items: Sequence[IntakeItem]) -> list[Outcome]:
    """Store every acceptable request of `items` in the caller's transaction; one outcome each."""
    return store_checked(session, check_requests(session, items, lock_keys=True))


def check_requests(
    session: Session, items: Sequence[IntakeItem], *, lock_keys: bool = False, read_keys: bool = True
) -> Checked:
    """The reads of a batch: its keys (replays, reuse with another body) and its elders.
    `read_keys=False`: the keys are only checked for their form and for repeats within the
    batch, not looked up: a key used before then fails the insert on its unique constraint, and
    the API's batcher takes the batch again with its keys read (batcher.py: under load nearly
    every key is new, and the lookup was a read per batch). `lock_keys`: take PostgreSQL's
    per-key locks."""
    outcomes = [Outcome() for _ in items]
    prints = [fingerprint(item.request_in) for item in items]
    _apply_keys(session, items, prints, outcomes, lock_keys=lock_keys, read_keys=read_keys)
    townships = _check_elders(session, items, outcomes)
    return Checked(items, prints, outcomes, townships)


def store_checked(session: Session, checked: Checked) -> list[Outcome]:
    """Store the requests of a checked batch not decided by its reads, in the caller's transaction."""
    fresh = [i for i, outcome in enumerate(checked.outcomes) if not outcome.decided]
    if fresh:
        _store(session, checked, fresh)
    return checked.outcomes


# ---- idempotency keys --------------------------------------------------------------------


def _apply_keys(
    session: Session,
    items: Sequence[IntakeItem],
    prints: list[str],
    outcomes: list[Outcome],
    *,
    lock_keys: bool,
    read_keys: bool = True,
) -> None:
    """Bad keys: 400. Known keys: the first answer again (200), or 422 with another body.
    A key given twice in one batch: the later one waits for the first, as a retry would."""
    keyed = []
    for i, item in enumerate(items):
        key = item.idempotency_key
        if key is None:
            continue
        if not KEY_PATTERN.match(key):
            outcomes[i].error = BadRequest("Idempotency-Key must be 1-255 visible ASCII characters")
            continue
        keyed.append(i)
    if not keyed:
        return
    if lock_keys:
        _lock_keys(session, items, keyed, outcomes)
    keyed = [i for i in keyed if not outcomes[i].decided]
    pairs = {(items[i].principal.id, items[i].idempotency_key) for i in keyed}
    stored = (
        {
            (r.user_id, r.key): r
            for r in session.scalars(
                select(IdempotencyRecord).where(
                    col(IdempotencyRecord.user_id).in_({u for u, _ in pairs}),
                    col(IdempotencyRecord.key).in_({k for _, k in pairs}),
                )
            )
        }
        if read_keys
        else {}
    )
    first_in_batch: dict[tuple[int, str | None], int] = {}
    for i in keyed:
        pair = (items[i].principal.id, items[i].idempotency_key)
        record = stored.get(pair)  # type: ignore[arg-type]
        if record is not None:
            if record.fingerprint != prints[i]:
                outcomes[i].error = Unprocessable(
                    "this Idempotency-Key was used with a different request body"
                )
            else:
                outcomes[i].read, outcomes[i].replayed = RequestRead.model_validate(record.response), True
        elif pair in first_in_batch:
            outcomes[i].error = Conflict(
                "a request with this Idempotency-Key is still being processed; retry shortly"
            )
        else:
            first_in_batch[pair] = i


def _lock_keys(
    session: Session, items: Sequence[IntakeItem], keyed: list[int], outcomes: list[Outcome]
) -> None:
    """PostgreSQL: a concurrent first use of a key elsewhere holds its lock until it commits: 409.
    (SQLite serialises writers, so a key's first use has always committed when we read.)"""
    if session.get_bind().dialect.name != "postgresql":
        return
    names = [f"{items[i].principal.id}:{items[i].idempotency_key}" for i in keyed]
    got = (
        session.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) AS k"),
            {"keys": names},
        )
        .scalars()
        .all()
    )
    for i, ok in zip(keyed, got, strict=True):
        if not ok:
            outcomes[i].error = Conflict(
                "a request with this Idempotency-Key is still being processed; retry shortly"
            )


# ---- elders ------------------------------------------------------------------------------


# Built once, the ids bound: a statement built per batch cost SQLAlchemy its cache key each
# time, and the ORM's execute path its own overhead, ~a third of a small intake batch's CPU.
_ELDERS = select(col(Elder.id), col(Elder.township), col(Elder.deceased_on)).where(
    col(Elder.id).in_(bindparam("ids", expanding=True))
)
_FAMILY_LINKS = select(col(FamilyLink.user_id), col(FamilyLink.elder_id)).where(
    col(FamilyLink.user_id).in_(bindparam("ids", expanding=True))
)


def _check_elders(session: Session, items: Sequence[IntakeItem], outcomes: list[Outcome]) -> dict[int, str]:
    """The elder must exist, be in the caller's scope (404 alike otherwise), and be alive.
    Returns each elder's township."""
    open_items = [i for i, outcome in enumerate(outcomes) if not outcome.decided]
    if not open_items:
        return {}
    conn = session.connection()
    elder_ids = sorted({items[i].request_in.elder_id for i in open_items})
    elders: dict[int, tuple[str, date | None]] = {
        row.id: (row.township, row.deceased_on) for row in conn.execute(_ELDERS, {"ids": elder_ids})
    }
    family_ids = sorted({items[i].principal.id for i in open_items if items[i].principal.role == Role.FAMILY})
    links: set[tuple[int, int]] = set()
    if family_ids:
        links = {(row.user_id, row.elder_id) for row in conn.execute(_FAMILY_LINKS, {"ids": family_ids})}
    for i in open_items:
        principal, elder_id = items[i].principal, items[i].request_in.elder_id
        found = elders.get(elder_id)
        in_scope = principal.is_staff or (principal.role == Role.FAMILY and (principal.id, elder_id) in links)
        if found is None or not in_scope:
            outcomes[i].error = NotFound(f"elder {elder_id} not found")
        elif found[1] is not None:
            outcomes[i].error = Conflict(
                f"elder {elder_id} is recorded as deceased on {found[1].isoformat()}"
            )
    return {elder_id: township for elder_id, (township, _) in elders.items()}


# ---- storing -----------------------------------------------------------------------------


def request_values(
    principal: Principal, request_in: RequestCreate, *, township: str, now: datetime
) -> dict[str, Any]:
    """The row of a new request, with the defaults an operator would pick."""
    settings = get_settings()
    if request_in.window_start and request_in.window_end:
        window = (request_in.window_start, request_in.window_end)
    else:
        window = default_window(request_in.kind, request_in.details, now)
    priority = request_in.priority or Priority.NORMAL
    if request_in.kind == RequestKind.EMERGENCY:
        priority = Priority.URGENT
    details = request_in.details.model_dump(mode="json", exclude_none=True)
    if request_in.kind == RequestKind.MEAL:
        details.setdefault("slot", "lunch")
    channel = request_in.channel or (Channel.APP if principal.role == Role.FAMILY else Channel.HOTLINE)
    sla = settings.urgent_sla_seconds if priority == Priority.URGENT else settings.assign_sla_seconds
    return {
        "elder_id": request_in.elder_id,
        "kind": request_in.kind.value,
        "priority": Priority(priority).value,
        "channel": Channel(channel).value,
        "status": RequestStatus.QUEUED.value,
        "version": 0,
        "details": details,
        "window_start": window[0],
        "window_end": window[1],
        "note": request_in.note,
        "township": township,
        "provider_id": None,
        "caregiver_id": None,
        "created_by": principal.id,
        "escalation_reason": None,
        "due_at": now + timedelta(seconds=sla),
        "created_at": now,
        "updated_at": now,
        "assigned_at": None,
        "closed_at": None,
    }


_REQUESTS = ServiceRequest.__table__  # type: ignore[attr-defined]
# Core statements on the tables, compiled once: the ORM's bulk insert cost a third more per row.
_INSERT_KEYS = IdempotencyRecord.__table__.insert()  # type: ignore[attr-defined]


def _store(session: Session, checked: Checked, fresh: list[int]) -> None:
    items, outcomes, now = checked.items, checked.outcomes, utcnow()
    rows = [
        request_values(
            items[i].principal,
            items[i].request_in,
            township=checked.townships[items[i].request_in.elder_id],
            now=now,
        )
        for i in fresh
    ]
    conn = session.connection()
    ids = insert_returning_keys(conn, _REQUESTS, rows)
    lock_event_order(session)
    events = [
        {
            "type": "request.created",
            "request_id": request_id,
            "elder_id": row["elder_id"],
            "provider_id": None,
            "status": RequestStatus.QUEUED.value,
            "at": now,
            "data": {
                "kind": row["kind"],
                "priority": row["priority"],
                "township": row["township"],
                "channel": row["channel"],
            },
        }
        for request_id, row in zip(ids, rows, strict=True)
    ]
    seqs = insert_events(session, events)
    audit.record_changes(  # a request filed for an elder is a change of the elder's record
        session,
        [
            (
                items[i].principal,
                items[i].client,
                row["elder_id"],
                "request.created",
                f"request {rid} event {seq}",
            )
            for i, rid, seq, row in zip(fresh, ids, seqs, rows, strict=True)
        ],
    )
    records = []
    for i, request_id, seq, row in zip(fresh, ids, seqs, rows, strict=True):
        read = _read(request_id, row, seq, now)
        outcomes[i].read = read
        key = items[i].idempotency_key
        if key is not None:
            records.append(
                {"user_id": items[i].principal.id, "key": key, "fingerprint": checked.prints[i],
                 "request_id": request_id, "response": read.model_dump(mode="json"), "created_at": now}
            )  # fmt: skip
    if records:
        execute_many(conn, _INSERT_KEYS, records)
    for request_id, row in zip(ids, rows, strict=True):
        if row["kind"] == RequestKind.EMERGENCY:
            request = session.get(ServiceRequest, request_id)
            assert request is not None
            sms_rules.after_created(session, request)
    offers.request_matching(
        session, urgent=any(row["priority"] == Priority.URGENT for row in rows), request_ids=ids
    )


def _read(request_id: int, row: dict[str, Any], seq: int, now: datetime) -> RequestRead:
    return RequestRead(
        id=request_id,
        elder_id=row["elder_id"],
        kind=row["kind"],
        priority=row["priority"],
        channel=row["channel"],
        status=RequestStatus.QUEUED,
        provider_id=None,
        caregiver_id=None,
        created_at=now,
        updated_at=now,
        timeline=[TimelineEntry(seq=seq, type="request.created", status=RequestStatus.QUEUED.value, at=now)],
        details=RequestDetailsRead.model_validate(row["details"]),
        # As stored and read back (UTC), whatever zone the window was given or picked in.
        window_start=as_utc(row["window_start"]),
        window_end=as_utc(row["window_end"]),
        note=row["note"],
        township=row["township"],
        escalation_reason=None,
        due_at=row["due_at"],
    )
