"""The outbox relay (workers/maintenance.relay_outbox): a row not done 5 s after its commit is
handed to RQ again only if RQ no longer holds its job (lost with a flushed Redis, never
enqueued because the process died, or given up as failed). A job still waiting in its queue
(a backlog) is left alone: enqueueing the same id again would queue it twice (rq#1521), and
a relay every 2 s would add 500 copies each time while the backlog lasts. Each stale row is
looked at once per RELAY_RECHECK, so rows held by RQ at the front never hide a lost one
behind them."""

from __future__ import annotations

from datetime import timedelta

from rq.job import Job, JobStatus
from sqlmodel import Session, col, update

from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope
from dispatch.core.jobs import COALESCE_MATCH, JobName, QueueName
from dispatch.core.outbox import WAKE_KEY, OutboxJob, add_job
from dispatch.core.redis import get_queue, get_redis
from workers.maintenance import RELAY_AFTER, RELAY_RECHECK, relay_outbox


def _sms_rows(session: Session, count: int) -> list[int]:
    """`count` send jobs owed and committed (the fast path enqueues each); their row ids."""
    owed = [add_job(session, JobName.SEND_SMS, queue=QueueName.NOTIFY, message_id=i) for i in range(count)]
    session.commit()
    return [row.id for row in owed if row.id is not None]


def _age_rows(*, checked: bool = False) -> None:
    """Every open row committed longer ago than the relay waits (and, with `checked`, looked at
    by the relay longer ago than it waits to look again)."""
    past = utcnow() - RELAY_AFTER - timedelta(seconds=1)
    values: dict[str, object] = {"created_at": past}
    if checked:
        values["enqueued_at"] = utcnow() - RELAY_RECHECK - timedelta(seconds=1)
    with session_scope() as session:
        session.execute(update(OutboxJob).where(col(OutboxJob.done_at).is_(None)).values(**values))


def _queued_ids() -> list[str]:
    """The notify queue's job ids as RQ holds them, copies included."""
    return get_queue(QueueName.NOTIFY).get_job_ids()


def _job(row_id: int) -> Job:
    job = get_queue(QueueName.NOTIFY).fetch_job(f"outbox-{row_id}")
    assert job is not None
    return job


def _lose(row_id: int) -> None:
    """The job of a row gone from Redis (a flush, a restart without its file)."""
    get_queue(QueueName.NOTIFY).remove(f"outbox-{row_id}")
    _job(row_id).delete()


def test_a_job_still_waiting_in_its_queue_is_not_queued_again(session: Session) -> None:
    (row_id,) = _sms_rows(session, 1)
    assert _queued_ids() == [f"outbox-{row_id}"]
    _age_rows()
    assert relay_outbox() == 0
    assert _queued_ids() == [f"outbox-{row_id}"]  # once, not twice
    _age_rows(checked=True)  # looked at again later: still waiting, still once
    assert relay_outbox() == 0
    assert _queued_ids() == [f"outbox-{row_id}"]


def test_a_lost_job_is_handed_over_once(session: Session) -> None:
    kept, lost = _sms_rows(session, 2)
    _lose(lost)
    assert _queued_ids() == [f"outbox-{kept}"]
    _age_rows()
    assert relay_outbox() == 1
    assert sorted(_queued_ids()) == sorted([f"outbox-{kept}", f"outbox-{lost}"])
    job = _job(lost)
    assert job.kwargs == {"message_id": 1, "outbox_id": lost}
    _age_rows(checked=True)
    assert relay_outbox() == 0  # now held by RQ like the other
    assert sorted(_queued_ids()) == sorted([f"outbox-{kept}", f"outbox-{lost}"])


def test_a_job_rq_gave_up_on_is_handed_over_again(session: Session) -> None:
    (row_id,) = _sms_rows(session, 1)
    queue = get_queue(QueueName.NOTIFY)
    queue.remove(f"outbox-{row_id}")
    job = _job(row_id)
    job.set_status(JobStatus.FAILED)  # its retries spent, its row still open
    _age_rows()
    assert relay_outbox() == 1
    assert _queued_ids() == [f"outbox-{row_id}"]
    assert _job(row_id).get_status() == JobStatus.QUEUED


def test_rows_held_by_rq_do_not_hide_a_lost_one_behind_them(session: Session) -> None:
    *held, lost = _sms_rows(session, 4)
    _lose(lost)
    _age_rows()
    assert relay_outbox(limit=2) == 0  # the two oldest: waiting in the queue
    assert relay_outbox(limit=2) == 1  # the next two, not the same two again: one was lost
    assert sorted(_queued_ids()) == sorted(f"outbox-{i}" for i in [*held, lost])
    assert relay_outbox(limit=2) == 0  # every row looked at within RELAY_RECHECK


def test_a_rows_shared_job_is_woken_only_when_no_wake_is_pending(session: Session) -> None:
    for _ in range(2):  # two transactions: two rows sharing the matcher's one wake-up
        add_job(session, JobName.MATCH_PENDING, queue=QueueName.MATCH, coalesce=COALESCE_MATCH)
        session.commit()
    match = get_queue(QueueName.MATCH)
    assert len(match.get_job_ids()) == 1 and get_redis().exists(WAKE_KEY.format(COALESCE_MATCH))
    _age_rows()
    assert relay_outbox() == 0  # the matcher's wake-up is still queued
    assert len(match.get_job_ids()) == 1
    match.empty()  # lost, and its flag with it
    get_redis().delete(WAKE_KEY.format(COALESCE_MATCH))
    _age_rows(checked=True)
    assert relay_outbox() == 2  # both rows handed over, by one wake-up
    assert len(match.get_job_ids()) == 1
