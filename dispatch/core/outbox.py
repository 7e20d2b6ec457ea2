"""Transactional outbox: a job is owed when its row commits, together with the change that caused it.

Flow: a service calls add_job() inside its transaction. Right after the commit the owning
process enqueues the new rows to RQ (the fast path). If that fails, or the process dies in
between, the relay (a cron job) finds rows still not done and enqueues them again. A job
marks its row done with claim() in the same transaction as its effects, so running a job
twice has its effects once. Rows with a coalesce key do not get a job each: they wake one
shared job (the batch matcher), which marks them all done.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import redis
from rq import Retry
from sqlalchemy import Index, event, text, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, Session, SQLModel, col, select

from dispatch.core import faults
from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.redis import get_queue, get_redis
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
    enqueued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def job_id(self) -> str:
        return f"outbox-{self.id}"


def add_job(
    session: Session,
    job: str,
    *,
    queue: str,
    run_at: datetime | None = None,
    coalesce: str | None = None,
    **kwargs: Any,
) -> OutboxJob:
    """Owe a job, in the caller's transaction. It is enqueued after the commit. A coalesced job
    is owed once per transaction: its shared run serves everything the transaction wrote."""
    if coalesce is not None and run_at is None:
        for pending in session.info.get(_PENDING_KEY, []):
            if pending.coalesce == coalesce and pending.job == job:
                if kwargs.get("urgent") and not pending.payload.get("urgent"):
                    pending.payload = {**pending.payload, "urgent": True}
                    session.add(pending)
                return pending
    row = OutboxJob(job=job, queue=queue, payload=kwargs, run_at=run_at, coalesce=coalesce)
    session.add(row)
    session.flush()
    session.info.setdefault(_PENDING_KEY, []).append(row)
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


def enqueue_rows(rows: Sequence[OutboxJob], conn: redis.Redis | None = None) -> list[int]:
    """Hand rows to RQ under deterministic job ids; returns the ids handed over."""
    conn = conn or get_redis()
    settings = get_settings()
    sent: list[int] = []
    woken: dict[tuple[str, str, str], bool] = {}
    with conn.pipeline(transaction=False) as pipe:
        for row in rows:
            assert row.id is not None
            if row.coalesce:
                key = (row.coalesce, row.job, row.queue)
                woken[key] = woken.get(key, False) or bool(row.payload.get("urgent"))
                sent.append(row.id)
                continue
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
            sent.append(row.id)
        pipe.execute()
    for (coalesce, job, queue_name), urgent in woken.items():
        wake(coalesce, job, queue_name, urgent=urgent, conn=conn)
    return sent


def stale_rows(session: Session, *, older_than: timedelta, limit: int = 500) -> list[OutboxJob]:
    """Rows owed but not done for a while: lost on the way (a crash, a flushed Redis)."""
    cutoff = utcnow() - older_than
    stmt = (
        select(OutboxJob)
        .where(col(OutboxJob.done_at).is_(None), col(OutboxJob.created_at) < cutoff)
        .where((col(OutboxJob.run_at).is_(None)) | (col(OutboxJob.run_at) < cutoff))
        .order_by(col(OutboxJob.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def mark_enqueued(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(
            update(OutboxJob).where(col(OutboxJob.id).in_(list(ids))).values(enqueued_at=utcnow())
        )


def reload_pending(session: Session) -> None:
    """Load again the rows this transaction owes jobs for (after an expire_all): the relay
    after the commit reads them and may not emit SQL there."""
    for row in session.info.get(_PENDING_KEY, []):
        if row in session:
            session.refresh(row)


@event.listens_for(OrmSession, "after_commit")
def _relay_after_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT released (SQLAlchemy calls this hook for
        return  # those too): nothing is committed yet, so nothing may be handed to RQ
    # A row written inside a SAVEPOINT that was rolled back was expunged: it was never stored.
    rows = [row for row in session.info.pop(_PENDING_KEY, None) or [] if row in session]
    if not rows:
        return
    faults.point("outbox.after_commit")  # committed, not yet enqueued: the dual-write gap
    try:
        enqueue_rows(rows)
    except Exception:  # the relay cron job will hand these over; the commit stands
        log.warning("outbox fast path failed for %d row(s); the relay will retry", len(rows), exc_info=True)


@event.listens_for(OrmSession, "after_rollback")
def _forget_after_rollback(session: OrmSession) -> None:
    if session.in_nested_transaction():  # back to a SAVEPOINT: the rest still owes its jobs
        return
    session.info.pop(_PENDING_KEY, None)
