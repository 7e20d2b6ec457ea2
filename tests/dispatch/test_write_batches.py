"""The API's writer (dispatch/core/writer.py): short write units of work that arrive together
commit in one transaction, a savepoint each; a unit that fails changes nothing and takes no
other unit with it; each unit's audit rows name its own caller."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import Session, col, select

from dispatch.core import writer as writer_module
from dispatch.core.audit import AuditEntry, record_change
from dispatch.core.auth import Principal, Role
from dispatch.core.db import session_scope
from dispatch.core.errors import Conflict
from dispatch.core.jobs import JobName, QueueName
from dispatch.core.outbox import OutboxJob, add_job
from dispatch.core.redis import get_queue
from dispatch.core.writer import UnitOfWork, WriteBatcher, run_units


def _caller(user_id: int, host: str) -> Any:
    """An HTTP request as the audit log sees it: its signed-in principal and its client."""
    principal = Principal(id=user_id, username=f"user{user_id}", role=Role.PROVIDER, provider_id=1)
    return SimpleNamespace(state=SimpleNamespace(principal=principal), client=SimpleNamespace(host=host))


def _audit(elder_id: int, what: str, *, fail: bool = False) -> Any:
    def work(session: Session) -> str:
        record_change(session, elder_id=elder_id, action="test", what=what)
        session.flush()
        if fail:
            raise Conflict(f"{what} refused")
        return what

    return work


def _rows() -> list[AuditEntry]:
    with session_scope(write=False) as session:
        return list(
            session.exec(select(AuditEntry).where(AuditEntry.action == "test").order_by(col(AuditEntry.id)))
        )


def test_units_that_arrive_together_commit_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first unit's batch is held; the 30 that arrive meanwhile run as the next batch."""
    sizes: list[int] = []
    release = threading.Event()
    real = writer_module.run_units

    def held(units: list[UnitOfWork]) -> Any:
        sizes.append(len(units))
        if len(sizes) == 1:
            assert release.wait(30), "never released"
        return real(units)

    monkeypatch.setattr(writer_module, "run_units", held)

    async def scenario() -> list[Any]:
        writer = WriteBatcher()
        await writer.start()
        first = asyncio.create_task(writer.run(_audit(1, "first"), _caller(1, "10.0.0.1")))
        while not sizes:
            await asyncio.sleep(0.01)
        rest = [
            asyncio.create_task(writer.run(_audit(i, f"unit {i}"), _caller(i, "10.0.0.2")))
            for i in range(2, 32)
        ]
        await asyncio.sleep(0)  # let them all reach the queue
        release.set()
        results = await asyncio.gather(first, *rest)
        await writer.stop()
        return results

    results = asyncio.run(scenario())
    assert sizes == [1, 30]
    assert results == ["first"] + [f"unit {i}" for i in range(2, 32)]
    assert len(_rows()) == 31


def test_a_failing_unit_changes_nothing_and_the_others_commit() -> None:
    """Its audit row and the job it owed are rolled back to its savepoint; nothing of it is
    handed to RQ after the commit, while the units around it are stored and enqueued."""

    def owe(name: str, message_id: int, *, fail: bool) -> Any:
        def work(session: Session) -> str:
            add_job(session, JobName.SEND_SMS, queue=QueueName.NOTIFY, message_id=message_id)
            record_change(session, elder_id=7, action="test", what=name)
            if fail:
                raise Conflict("refused")
            return name

        return work

    units = [
        UnitOfWork(owe("a", 1001, fail=False), _caller(1, "h1")),
        UnitOfWork(owe("b", 1002, fail=True), _caller(2, "h2")),
        UnitOfWork(owe("c", 1003, fail=False), _caller(3, "h3")),
        UnitOfWork(owe("d", 1004, fail=True), _caller(4, "h4")),  # last: no later insert reuses its id
    ]
    results = run_units(units)
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], Conflict) and isinstance(results[3], Conflict)
    assert [r.what for r in _rows()] == ["a", "c"]
    with session_scope(write=False) as session:
        stored = sorted(r.payload["message_id"] for r in session.exec(select(OutboxJob)))
    assert stored == [1001, 1003]
    # (SQLite hands the rolled-back row's id to the next insert: compare payloads, not ids.)
    enqueued = sorted(job.kwargs["message_id"] for job in get_queue(QueueName.NOTIFY).get_jobs())
    assert enqueued == [1001, 1003]


def test_each_unit_is_audited_as_its_own_caller() -> None:
    run_units(
        [
            UnitOfWork(_audit(1, "by 11"), _caller(11, "10.0.0.11")),
            UnitOfWork(_audit(2, "by 12"), _caller(12, "10.0.0.12")),
            UnitOfWork(_audit(3, "by the system"), None),
        ]
    )
    rows = {r.what: (r.actor_id, r.client, r.actor_role) for r in _rows()}
    assert rows == {
        "by 11": (11, "10.0.0.11", "provider"),
        "by 12": (12, "10.0.0.12", "provider"),
        "by the system": (None, "", "system"),
    }


def test_a_batch_whose_commit_fails_runs_each_unit_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that breaks as a whole (here: its transaction made to fail) is run again one unit
    at a time, so every unit gets its own outcome."""
    real = writer_module._in_one_transaction
    calls: list[int] = []

    def flaky(units: list[UnitOfWork]) -> list[Any]:
        calls.append(len(units))
        if len(units) > 1:
            raise RuntimeError("disk full, say")
        return real(units)

    monkeypatch.setattr(writer_module, "_in_one_transaction", flaky)
    results = run_units(
        [
            UnitOfWork(_audit(1, "x"), None),
            UnitOfWork(_audit(2, "y", fail=True), None),
            UnitOfWork(_audit(3, "z"), None),
        ]
    )
    assert calls == [3, 1, 1, 1]
    assert results[0] == "x" and results[2] == "z" and isinstance(results[1], Conflict)
    assert [r.what for r in _rows()] == ["x", "z"]


def test_nothing_is_handed_to_rq_or_pinged_before_the_batch_commits() -> None:
    """SQLAlchemy runs after-commit hooks when a SAVEPOINT is released too: the outbox and the
    event ping must wait for the real COMMIT, or a worker could run a job whose row is not
    committed yet."""
    seen: list[int] = []

    def first(session: Session) -> str:
        add_job(session, JobName.SEND_SMS, queue=QueueName.NOTIFY, message_id=2001)
        return "first"

    def second(session: Session) -> str:
        seen.append(len(get_queue(QueueName.NOTIFY).get_jobs()))
        return "second"

    assert run_units([UnitOfWork(first, None), UnitOfWork(second, None)]) == ["first", "second"]
    assert seen == [0]
    assert [job.kwargs["message_id"] for job in get_queue(QueueName.NOTIFY).get_jobs()] == [2001]


def test_a_unit_after_a_failed_one_reads_what_is_stored_not_what_the_failed_one_set() -> None:
    """A compare-and-set sets the new value on the object without marking it changed; rolled
    back to its savepoint, the object would keep it. The next unit must see the stored row."""
    from sqlalchemy.orm.attributes import set_committed_value

    with session_scope() as session:
        record_change(session, elder_id=5, action="test", what="stored")
    with session_scope(write=False) as session:
        (row,) = session.exec(select(AuditEntry).where(AuditEntry.action == "test")).all()
        row_id = row.id
    kept: list[Any] = []

    def fails(session: Session) -> None:
        entry = session.get(AuditEntry, row_id)
        kept.append(entry)  # still referenced afterwards, as a traceback would
        set_committed_value(entry, "what", "changed, then rolled back")
        raise Conflict("refused")

    def reads(session: Session) -> str:
        entry = session.get(AuditEntry, row_id)
        assert entry is not None
        return entry.what

    results = run_units([UnitOfWork(fails, None), UnitOfWork(reads, None)])
    assert isinstance(results[0], Conflict)
    assert results[1] == "stored"
