"""The outbox (dispatch/core/outbox.py): a job owed in a transaction is handed to RQ after its
COMMIT, under the id outbox-{row id}; a job owed in a SAVEPOINT that was rolled back was never
stored and is not handed over, while the rest of the transaction's jobs are; a coalesced job is
one row per transaction, and its last urgency is what wakes the shared job."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatch.core.auth import Role, User
from dispatch.core.db import session_scope
from dispatch.core.jobs import COALESCE_MATCH, JobName, QueueName
from dispatch.core.outbox import HURRY_KEY, WAKE_KEY, OutboxJob, OwedJob, add_job
from dispatch.core.redis import get_queue, get_redis


def _sms(session: Session, message_id: int) -> OwedJob:
    return add_job(session, JobName.SEND_SMS, queue=QueueName.NOTIFY, message_id=message_id)


def _match(session: Session, *, urgent: bool = False) -> OwedJob:
    return add_job(
        session, JobName.MATCH_PENDING, queue=QueueName.MATCH, coalesce=COALESCE_MATCH, urgent=urgent
    )


def _stored() -> list[OutboxJob]:
    with session_scope(write=False) as session:
        return list(session.exec(select(OutboxJob).order_by(col(OutboxJob.id))))


def _enqueued() -> dict[str, Any]:
    """job id -> message_id of the send jobs in RQ."""
    return {job.id: job.kwargs["message_id"] for job in get_queue(QueueName.NOTIFY).get_jobs()}


def _matcher_wakes() -> list[str]:
    return [job.id for job in get_queue(QueueName.MATCH).get_jobs()]


def test_a_committed_job_is_enqueued_once_as_outbox_and_its_row_id(session: Session) -> None:
    owed = _sms(session, 11)
    assert (owed.job, owed.queue, owed.payload, owed.run_at, owed.coalesce) == (
        JobName.SEND_SMS,
        QueueName.NOTIFY,
        {"message_id": 11},
        None,
        None,
    )
    assert _enqueued() == {}  # nothing before the commit
    session.commit()
    (row,) = _stored()
    assert row.id == owed.id and row.payload == {"message_id": 11} and row.done_at is None
    assert owed.job_id == f"outbox-{row.id}"
    (job,) = get_queue(QueueName.NOTIFY).get_jobs()
    assert job.id == f"outbox-{row.id}"
    assert job.kwargs == {"message_id": 11, "outbox_id": row.id}
    session.commit()  # a later commit of the same session hands nothing over again
    assert len(get_queue(QueueName.NOTIFY).get_jobs()) == 1


def test_a_job_owed_in_a_rolled_back_savepoint_is_neither_stored_nor_enqueued(session: Session) -> None:
    _sms(session, 1)
    with session.begin_nested():
        _sms(session, 2)
    try:
        with session.begin_nested():
            _sms(session, 3)
            raise RuntimeError("the unit fails")
    except RuntimeError:
        pass
    _sms(session, 4)
    session.commit()
    assert [r.payload["message_id"] for r in _stored()] == [1, 2, 4]
    # (SQLite hands the rolled-back row's id to the next insert: compare payloads, not ids.)
    assert _enqueued() == {f"outbox-{r.id}": r.payload["message_id"] for r in _stored()}


def test_a_savepoint_rolled_back_drops_the_jobs_of_the_savepoints_released_inside_it(
    session: Session,
) -> None:
    _sms(session, 1)
    outer = session.begin_nested()
    _sms(session, 2)
    with session.begin_nested():
        _sms(session, 3)  # released into `outer`...
    outer.rollback()  # ... which is rolled back: gone with it
    _sms(session, 4)
    session.commit()
    assert sorted(_enqueued().values()) == [r.payload["message_id"] for r in _stored()] == [1, 4]


def test_rolling_back_an_outer_savepoint_drops_the_jobs_of_the_inner_one_still_open(session: Session) -> None:
    outer = session.begin_nested()
    _sms(session, 1)
    session.begin_nested()
    _sms(session, 2)
    outer.rollback()  # SQLAlchemy closes the inner one, then rolls back to the outer one
    assert not session.in_nested_transaction()
    _sms(session, 3)
    session.commit()
    assert sorted(_enqueued().values()) == [r.payload["message_id"] for r in _stored()] == [3]


def test_a_savepoint_whose_flush_fails_drops_its_jobs(session: Session) -> None:
    """As hotline/service.py and plans/service.py insert a row that may lose a unique index."""
    session.add(User(username="twin", password_hash="x", role=Role.OPERATOR))
    session.flush()
    with pytest.raises(IntegrityError), session.begin_nested():
        _sms(session, 1)
        session.add(User(username="twin", password_hash="y", role=Role.OPERATOR))
    _sms(session, 2)
    session.commit()
    assert sorted(_enqueued().values()) == [r.payload["message_id"] for r in _stored()] == [2]


def test_a_rolled_back_transaction_owes_nothing_to_the_next_one(session: Session) -> None:
    _sms(session, 1)
    session.rollback()
    _sms(session, 2)
    session.commit()
    assert list(_enqueued().values()) == [r.payload["message_id"] for r in _stored()] == [2]


def test_a_session_closed_without_commit_owes_nothing_when_used_again(session: Session) -> None:
    _sms(session, 1)
    session.close()  # no commit, no rollback: the transaction just ends
    _sms(session, 2)
    session.commit()
    assert list(_enqueued().values()) == [r.payload["message_id"] for r in _stored()] == [2]


def test_a_coalesced_job_owed_twice_is_one_row_and_urgent_reaches_the_wake_up(session: Session) -> None:
    conn = get_redis()
    first = _match(session)
    with session.begin_nested():
        second = _match(session, urgent=True)
    third = _match(session)  # not urgent: does not lower it
    assert first.id == second.id == third.id
    assert third.payload == {"urgent": True}
    assert conn.llen(HURRY_KEY.format(COALESCE_MATCH)) == 0
    session.commit()
    (row,) = _stored()
    assert row.id == first.id and row.coalesce == COALESCE_MATCH and row.payload == {"urgent": True}
    assert len(_matcher_wakes()) == 1  # one shared run woken, not a job per row
    assert conn.exists(WAKE_KEY.format(COALESCE_MATCH))
    assert conn.llen(HURRY_KEY.format(COALESCE_MATCH)) == 1  # the run was told to hurry


def test_urgency_raised_in_a_rolled_back_savepoint_is_rolled_back_too(session: Session) -> None:
    _match(session)
    try:
        with session.begin_nested():
            _match(session, urgent=True)
            raise RuntimeError("the unit fails")
    except RuntimeError:
        pass
    session.commit()
    (row,) = _stored()
    assert row.payload == {"urgent": False}
    assert len(_matcher_wakes()) == 1
    assert get_redis().llen(HURRY_KEY.format(COALESCE_MATCH)) == 0


def test_a_coalesced_job_first_owed_in_a_rolled_back_savepoint_is_owed_again(session: Session) -> None:
    """The row of the rolled-back savepoint is gone: owing the job again must write a new one,
    not find the lost one and owe nothing."""
    try:
        with session.begin_nested():
            lost = _match(session)
            raise RuntimeError("the batch lost a race")
    except RuntimeError:
        pass
    kept = _match(session)
    session.commit()
    (row,) = _stored()
    assert row.id == kept.id
    assert kept is not lost
    assert len(_matcher_wakes()) == 1


def test_nothing_is_enqueued_when_a_savepoint_is_released(session: Session) -> None:
    with session.begin_nested():
        _sms(session, 1)
    assert _enqueued() == {}
    session.commit()
    assert list(_enqueued().values()) == [1]
