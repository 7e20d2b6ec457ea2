"""The event log: one row per change, with a platform-wide rising `seq`, written in the
transaction of the change. Redis pub/sub only pings API instances to read new rows.

`seq` must rise in commit order, or a client resuming with `since=` could skip an event
that committed late with a smaller number. SQLite serialises writers, so this holds there.
On PostgreSQL every transaction that writes events takes one advisory lock before drawing
its first number and holds it until commit, which gives the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, Session, SQLModel, col, select

from dispatch.core import audit, jsontext
from dispatch.core.clock import utcnow
from dispatch.core.inserts import insert_returning_keys
from dispatch.core.redis import get_redis
from dispatch.core.savepoints import current_savepoint, within
from dispatch.core.types import JSONType, UTCDateTime

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "eldercare:events"
_EVENT_LOCK_ID = 7_300_001
_LOCKED_KEY = "eldercare_event_lock"
_EMITTED_KEY = "eldercare_emitted_seq"


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=40)
    request_id: int | None = Field(default=None, index=True)
    elder_id: int | None = Field(default=None, index=True)
    provider_id: int | None = Field(default=None, index=True)
    status: str | None = Field(default=None, max_length=20)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)

    def to_message(self) -> dict[str, Any]:
        """The websocket frame of API.md."""
        return message(self.seq, self.type, self.request_id, self.status, self.at, self.data)

    def to_json(self) -> str:
        return jsontext.dumps(self.to_message())


def message(
    seq: int | None, type: str, request_id: int | None, status: str | None, at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """An event's websocket frame (API.md), from its columns (console/hub.py reads them as rows)."""
    return {
        "seq": seq,
        "type": type,
        "request_id": request_id,
        "status": status,
        "at": at.isoformat(),
        "data": data,
    }


@dataclass(frozen=True, slots=True)
class Emitted:
    """An event written set-wise (insert_events): the row and its seq, without an ORM object
    (building one cost more than writing the row)."""

    seq: int
    type: str
    request_id: int | None
    elder_id: int | None
    provider_id: int | None
    status: str | None
    at: datetime
    data: dict[str, Any]


# Either way an event was written: one at a time (emit) or set-wise (insert_events).
EventLike = Event | Emitted


_EVENTS = Event.__table__  # type: ignore[attr-defined]


def insert_events(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Write many events at once (Core: the ORM's flush costs several times more per row) in
    the session's transaction; their seqs, in the order of `rows`. The listeners are pinged
    after the commit. The caller took the event-order lock (lock_event_order)."""
    seqs = insert_returning_keys(session.connection(), _EVENTS, rows)
    note_emitted(session, max(seqs))
    return seqs


def note_emitted(session: Session, seq: int) -> None:
    """Events written with a bulk insert: ping the listeners after the commit, as emit() does."""
    session.info[_EMITTED_KEY] = max(seq, session.info.get(_EMITTED_KEY) or 0)


def emit(
    session: Session,
    type: str,
    *,
    request_id: int | None = None,
    elder_id: int | None = None,
    provider_id: int | None = None,
    status: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Write one event in the caller's transaction; its seq is known on return."""
    lock_event_order(session)
    row = Event(
        type=type,
        request_id=request_id,
        elder_id=elder_id,
        provider_id=provider_id,
        status=status,
        data=data or {},
    )
    session.add(row)
    session.flush()
    session.info[_EMITTED_KEY] = row.seq
    if elder_id is not None:  # a change of this elder's record: audited in the same transaction
        audit.record_change(
            session, elder_id=elder_id, action=type, what=f"request {request_id} event {row.seq}"
        )
    return row


def lock_event_order(session: Session) -> None:
    """PostgreSQL: take the event-order lock before drawing the transaction's first seq.

    Every change of a request's or an offer's status writes an event, so this lock is also the
    first lock such a change takes (lifecycle.transition, the offers' compare-and-sets):
    whoever holds it knows no other transaction can change a request or offer until it commits,
    and the locks of a transaction come in one order: providers' rows, this lock, then the rows
    of offers and requests. Held until the transaction ends; a ROLLBACK TO SAVEPOINT lets go of
    it when it was taken inside that savepoint (PostgreSQL releases a subtransaction's locks),
    and then it is taken again here."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    held, transaction = session.info.get(_LOCKED_KEY), session.get_transaction()
    if held is not None and transaction is not None and within(held, transaction):
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _EVENT_LOCK_ID})
    session.info[_LOCKED_KEY] = current_savepoint(session)


def last_seq(session: Session) -> int:
    stmt = select(Event.seq).order_by(col(Event.seq).desc()).limit(1)
    return session.exec(stmt).first() or 0


def timeline(session: Session, request_id: int) -> list[Event]:
    stmt = select(Event).where(Event.request_id == request_id).order_by(col(Event.seq))
    return list(session.exec(stmt))


def publish_ping(seq: int) -> None:
    get_redis().publish(EVENTS_CHANNEL, str(seq))


# Where this process's own commits of events are announced. By default a Redis PUBLISH, at
# once, on the committing thread; the API process's hub takes them instead (console/hub.py):
# it wakes its own consoles without a round trip and pings the other instances from its loop,
# one PUBLISH for every commit that arrived meanwhile.
_announce: Callable[[int], None] = publish_ping


def announce_with(announce: Callable[[int], None]) -> None:
    """Announce this process's committed events with `announce(seq)` from now on."""
    global _announce
    _announce = announce


def stop_announcing_with(announce: Callable[[int], None]) -> None:
    """Back to a Redis PUBLISH at once, unless someone else took over meanwhile."""
    global _announce
    if _announce == announce:
        _announce = publish_ping


@sa_event.listens_for(OrmSession, "after_commit")
def _ping_after_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT released: nothing is committed yet
        return
    session.info.pop(_LOCKED_KEY, None)
    seq = session.info.pop(_EMITTED_KEY, None)
    if seq is None:
        return
    try:
        _announce(seq)
    except Exception:  # listeners also poll the table; a lost ping only delays them
        log.warning("event ping failed for seq %s", seq, exc_info=True)


@sa_event.listens_for(OrmSession, "after_rollback")
def _forget_after_rollback(session: OrmSession) -> None:
    rolled_back = session.get_nested_transaction()  # the savepoint rolled back, if it was one
    if rolled_back is not None:  # a ping too many only wakes listeners; a lock let go is gone
        held = session.info.get(_LOCKED_KEY)
        if held is not None and within(held, rolled_back):
            session.info.pop(_LOCKED_KEY, None)
        return
    session.info.pop(_LOCKED_KEY, None)
    session.info.pop(_EMITTED_KEY, None)
