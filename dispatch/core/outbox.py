"""Transactional outbox: a job is owed when its row commits, together with the change that caused it.

Flow: a service calls add_job() inside its transaction. Right after the commit the owning
process enqueues the new rows to RQ (the fast path). If that fails, or the process dies in
between, the relay (a cron job) finds rows still not done and enqueues them again. A job
marks its row done with claim() in the same transaction as its effects, so running a job
twice has its effects once. Rows with a coalesce key do not get a job each: they wake one
shared job (the batch matcher), which marks them all done.

The process remembers the rows it wrote (plain records, in session.info) until the commit. A
row written inside a SAVEPOINT that is then rolled back was never stored: it is forgotten at
that rollback, with the savepoint it was written in, or any savepoint around that one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import redis
from rq import Retry
from rq.job import Job, JobStatus
from sqlalchemy import Index, bindparam, event, text, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Field, Session, SQLModel, col, select

from dispatch.core import faults
from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.redis import get_queue, get_redis
from dispatch.core.savepoints import within
from dispatch.core.types import JSONType, UTCDateTime

log = logging.getLogger(__name__)

WAKE_KEY = "eldercare:wake:{}"
HURRY_KEY = "eldercare:hurry:{}"
# If the woken job is lost (a Redis restart from its append-only file keeps the flag but may
# lose the job), new wake-ups are blocked this long at most; the sweeper also forces one.
WAKE_TTL_SECONDS = 10
_PENDING_KEY = "eldercare_outbox_pending"


class OutboxJob(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_open", "created_at", sqlite_where=text("done_at IS NULL")),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=120)
    queue: str = Field(max_length=60)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    coalesce: str | None = Field(default=None, max_length=60, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When the relay last looked at the row (handed it over, or found it in RQ's hands); the
    # fast path does not write it.
    enqueued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def job_id(self) -> str:
        return f"outbox-{self.id}"


class OutboxRow(Protocol):
    """What enqueue_rows reads of a row: a stored OutboxJob, or the OwedJob add_job returned."""

    @property
    def id(self) -> int | None: ...
    @property
    def job(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def run_at(self) -> datetime | None: ...
    @property
    def coalesce(self) -> str | None: ...
    @property
    def job_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OwedJob:
    """A row add_job wrote: what the fast path hands to RQ after the commit. A plain record, not
    an ORM object: the relay after the commit may not emit SQL, and nothing here can expire."""

    id: int
    job: str
    queue: str
    payload: dict[str, Any]
    run_at: datetime | None
    coalesce: str | None

    @property
    def job_id(self) -> str:
        return f"outbox-{self.id}"


class _Pending(NamedTuple):
    row: OwedJob
    # The innermost SAVEPOINT open when it was written (None: the transaction itself). If that
    # savepoint or one around it is rolled back, so is the row (or the row's UPDATE).
    savepoint: SessionTransaction | None


# session.info[_PENDING_KEY]: list[_Pending], the rows this transaction owes jobs for, in the
# order written. A list of immutable entries, so a shallow copy of session.info is a snapshot
# (dispatch/core/writer.py copies it around each unit). The same row is listed again when it
# changed (a coalesced row raised to urgent): the last entry of a row is its state.
_TABLE = OutboxJob.__table__  # type: ignore[attr-defined]
_INSERT = _TABLE.insert().returning(_TABLE.c.id)
_SET_PAYLOAD = (
    _TABLE.update().where(_TABLE.c.id == bindparam("row_id")).values(payload=bindparam("new_payload"))
)


def add_job(
    session: Session,
    job: str,
    *,
    queue: str,
    run_at: datetime | None = None,
    coalesce: str | None = None,
    **kwargs: Any,
) -> OwedJob:
    """Owe a job, in the caller's transaction. It is enqueued after the commit. A coalesced job
    is owed once per transaction: its shared run serves everything the transaction wrote.

    One Core insert, no ORM object and no flush: this runs inside the write lock of every
    intake, accept and matcher batch (bench/outbox_cpu.py: the ORM's object and flush cost
    ~0.2 ms a call, the insert ~0.05 ms). Objects the caller added are flushed later, as usual."""
    pending: list[_Pending] = session.info.setdefault(_PENDING_KEY, [])
    if coalesce is not None and run_at is None:
        # The rows of a rolled-back savepoint were dropped from `pending`: a row found is stored.
        for entry in reversed(pending):
            row = entry.row
            if row.coalesce == coalesce and row.job == job and row.run_at is None:
                if kwargs.get("urgent") and not row.payload.get("urgent"):
                    # The stored row must say it too: if the fast path fails, the relay wakes
                    # the shared job from the table. Rare (a transaction turned urgent after
                    # owing the run), so one UPDATE now rather than bookkeeping until the commit.
                    row = replace(row, payload={**row.payload, "urgent": True})
                    session.connection().execute(_SET_PAYLOAD, {"row_id": row.id, "new_payload": row.payload})
                    pending.append(_Pending(row, session.get_nested_transaction()))
                return row
    values = {
        "job": job,
        "queue": queue,
        "payload": kwargs,
        "run_at": run_at,
        "coalesce": coalesce,
        "created_at": utcnow(),
    }
    row_id = session.connection().execute(_INSERT, values).scalar_one()
    row = OwedJob(id=row_id, job=job, queue=queue, payload=kwargs, run_at=run_at, coalesce=coalesce)
    pending.append(_Pending(row, session.get_nested_transaction()))
    return row


def claim(session: Session, outbox_id: int | None) -> bool:
    """Mark a row done inside the job's transaction; False if an earlier run already did."""
    if outbox_id is None:
        return True
    result = session.execute(
        update(OutboxJob)
        .where(col(OutboxJob.id) == outbox_id, col(OutboxJob.done_at).is_(None))
        .values(done_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


def claim_coalesced(session: Session, coalesce: str, *, up_to: int) -> int:
    """Mark the open rows of a coalesce key done, up to the last row the shared job's
    snapshot could see (rows after it belong to the next run)."""
    result = session.execute(
        update(OutboxJob)
        .where(
            col(OutboxJob.coalesce) == coalesce,
            col(OutboxJob.done_at).is_(None),
            col(OutboxJob.id) <= up_to,
        )
        .values(done_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def wake(
    coalesce: str,
    job: str,
    queue: str,
    *,
    force: bool = False,
    urgent: bool = False,
    conn: redis.Redis | None = None,
) -> bool:
    """Make sure one shared job for `coalesce` is queued. The job clears the flag when it starts,
    so a row committed after that start queues the next run; none is left unserved. `urgent`
    also cuts short a run that is waiting out its batch window."""
    conn = conn or get_redis()
    key = WAKE_KEY.format(coalesce)
    if urgent:
        with conn.pipeline(transaction=False) as pipe:
            pipe.lpush(HURRY_KEY.format(coalesce), "1")
            pipe.ltrim(HURRY_KEY.format(coalesce), 0, 0)
            pipe.expire(HURRY_KEY.format(coalesce), 60)
            pipe.execute()
    if force:
        conn.delete(key)
    if not conn.set(key, "1", nx=True, ex=WAKE_TTL_SECONDS):
        return False
    get_queue(queue, conn).enqueue(
        job,
        job_id=f"{coalesce}-{uuid.uuid4().hex[:12]}",
        job_timeout=get_settings().job_timeout_seconds,
        result_ttl=0,
        failure_ttl=3600,
    )
    return True


def clear_wake(coalesce: str, conn: redis.Redis | None = None) -> None:
    (conn or get_redis()).delete(WAKE_KEY.format(coalesce))


def enqueue_rows(rows: Sequence[OutboxRow], conn: redis.Redis | None = None) -> list[int]:
    """Hand rows to RQ under deterministic job ids; returns the ids handed over."""
    conn = conn or get_redis()
    plain = [row for row in rows if not row.coalesce]
    _enqueue_plain(plain, conn)
    _wake_shared([row for row in rows if row.coalesce], conn)
    return [row.id for row in rows if row.id is not None]


def _enqueue_plain(rows: Sequence[OutboxRow], conn: redis.Redis) -> None:
    """Each row's own job, all in one pipeline (one round trip)."""
    if not rows:
        return
    settings = get_settings()
    with conn.pipeline(transaction=False) as pipe:
        for row in rows:
            assert row.id is not None
            queue = get_queue(row.queue, conn)
            options: dict[str, Any] = {
                "kwargs": {**row.payload, "outbox_id": row.id},
                "job_id": row.job_id,
                "job_timeout": settings.job_timeout_seconds,
                "retry": Retry(max=3, interval=[1, 5, 15]),
                "result_ttl": 60,
                "failure_ttl": 24 * 3600,
                "pipeline": pipe,
            }
            if row.run_at is not None and row.run_at > utcnow():
                queue.enqueue_at(row.run_at, row.job, **options)
            else:
                queue.enqueue(row.job, **options)
        pipe.execute()


def _wake_shared(rows: Sequence[OutboxRow], conn: redis.Redis) -> int:
    """One wake-up per shared job of the coalesced rows (urgent if any row is); how many of
    the rows got a wake-up queued (none where one was pending already)."""
    shared: dict[tuple[str, str, str], list[OutboxRow]] = {}
    for row in rows:
        assert row.coalesce is not None
        shared.setdefault((row.coalesce, row.job, row.queue), []).append(row)
    return sum(
        len(its_rows)
        for (coalesce, job, queue), its_rows in shared.items()
        if wake(coalesce, job, queue, urgent=any(r.payload.get("urgent") for r in its_rows), conn=conn)
    )


# A job in one of these states is in RQ's hands: waiting in its queue, waiting for its time,
# or running. Enqueueing its id again would queue it a second time (rq#1521, rq#1701).
_HELD_BY_RQ = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED})


def hand_over_lost(rows: Sequence[OutboxRow], conn: redis.Redis | None = None) -> int:
    """For the relay: hand to RQ again the rows whose job it no longer holds; how many rows.

    A row's own job is handed over when RQ has no such job (a flushed Redis, a process that
    died between its commit and the fast path) or has given up on it (failed, stopped,
    cancelled, or finished without marking its row done); never while it is queued, scheduled
    or running, which under a backlog is most stale rows. A job whose worker died while running
    it stays "started" until RQ's own clean-up of abandoned jobs (a live worker's maintenance,
    once the execution's heartbeat lapsed) retries it or fails it; a failed one is handed over
    at the next look, and the sweeper covers the requests meanwhile. A coalesced row wakes its
    shared job unless a wake-up is pending already (outbox.wake)."""
    conn = conn or get_redis()
    plain = [row for row in rows if not row.coalesce]
    with conn.pipeline(transaction=False) as pipe:
        for row in plain:
            pipe.hget(Job.key_for(row.job_id), "status")
        statuses = pipe.execute() if plain else []
    lost = [row for row, status in zip(plain, statuses, strict=True) if _status(status) not in _HELD_BY_RQ]
    _enqueue_plain(lost, conn)
    return len(lost) + _wake_shared([row for row in rows if row.coalesce], conn)


def _status(raw: bytes | str | None) -> JobStatus | None:
    if raw is None:
        return None
    try:
        return JobStatus(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError:
        return None


def stale_rows(
    session: Session, *, older_than: timedelta, recheck_after: timedelta, limit: int = 500
) -> list[OutboxJob]:
    """Rows owed but not done for a while, oldest first, leaving out those the relay looked at
    within `recheck_after` (so that rows still waiting in a long queue do not take every look)."""
    now = utcnow()
    cutoff, recheck = now - older_than, now - recheck_after
    stmt = (
        select(OutboxJob)
        .where(col(OutboxJob.done_at).is_(None), col(OutboxJob.created_at) < cutoff)
        .where((col(OutboxJob.run_at).is_(None)) | (col(OutboxJob.run_at) < cutoff))
        .where((col(OutboxJob.enqueued_at).is_(None)) | (col(OutboxJob.enqueued_at) < recheck))
        .order_by(col(OutboxJob.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def mark_checked(session: Session, ids: Sequence[int]) -> None:
    """The relay looked at these rows now (handed over, or found still in RQ's hands)."""
    if ids:
        session.execute(
            update(OutboxJob).where(col(OutboxJob.id).in_(list(ids))).values(enqueued_at=utcnow())
        )


def _owed(session: OrmSession) -> list[OwedJob]:
    """The rows this transaction owes jobs for, each in its last state, in the order written."""
    rows: dict[int, OwedJob] = {}
    for entry in session.info.pop(_PENDING_KEY, None) or []:
        rows[entry.row.id] = entry.row
    return list(rows.values())


@event.listens_for(OrmSession, "after_commit")
def _relay_after_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT released (SQLAlchemy calls this hook for
        return  # those too): nothing is committed yet, so nothing may be handed to RQ
    rows = _owed(session)
    if not rows:
        return
    faults.point("outbox.after_commit")  # committed, not yet enqueued: the dual-write gap
    try:
        enqueue_rows(rows)
    except Exception:  # the relay cron job will hand these over; the commit stands
        log.warning("outbox fast path failed for %d row(s); the relay will retry", len(rows), exc_info=True)


@event.listens_for(OrmSession, "after_rollback")
def _forget_after_rollback(session: OrmSession) -> None:
    """A rollback at the database. SQLAlchemy calls this before it closes the transaction it
    rolled back, so the session's innermost savepoint is the one rolled back (inner ones were
    closed first), or there is none and the whole transaction was."""
    rolled_back = session.get_nested_transaction()
    if rolled_back is None:
        session.info.pop(_PENDING_KEY, None)
        return
    pending = session.info.get(_PENDING_KEY)
    if pending:  # rows written in that savepoint were never stored: drop them, keep the rest
        session.info[_PENDING_KEY] = [e for e in pending if not within(e.savepoint, rolled_back)]


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_after_close(session: OrmSession, transaction: SessionTransaction) -> None:
    # A transaction closed without a commit or a rollback (session.close()) stored nothing;
    # after a commit the relay above has taken the rows already.
    if transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)
