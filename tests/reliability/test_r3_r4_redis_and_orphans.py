"""R3: Redis FLUSHALL in the middle of a run: the relay and the sweeper rebuild the work
from SQL, nothing is lost. R4: a forking worker's parent SIGKILLed while its job runs slowly:
the orphaned work horse finishes later, but its decisions lose the compare-and-set to the
second run's, so nobody is offered a request twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import func
from sqlmodel import select

from dispatch.core.db import session_scope
from dispatch.core.jobs import QueueName
from dispatch.orders.models import Offer
from tests.helpers import wait_for
from tests.reliability.harness import (
    Answerer,
    ControlledRedis,
    Http,
    Proc,
    Record,
    build_world,
    check,
    cluster,
    post_requests,
)

pytestmark = [pytest.mark.fault, pytest.mark.e2e]


def test_r3_flushall_mid_run_loses_nothing(fault_env: dict[str, str], logs: Path, tmp_path: Path) -> None:
    redis_server = ControlledRedis(tmp_path / "redis")
    redis_server.start()
    with cluster({**fault_env, "REDIS_URL": redis_server.url}, logs) as c:
        base = c.api()
        c.add(
            "match",
            "worker",
            "--queue",
            QueueName.MATCH.value,
            env={"ELDERCARE_SLOW_AT": "match.before_apply:0.2"},
        )
        c.add("notify", "worker", "--queue", QueueName.NOTIFY.value)
        c.add("maintenance", "worker", "--queue", QueueName.MAINTENANCE.value)
        c.add("scheduler", "scheduler")
        c.watch()
        http = Http(base)
        world = build_world(base, elders=20, providers=8, capacity=40)
        record = Record()
        with Answerer(http, world, decline=0.1, ignore=0.1):
            poster = threading.Thread(
                target=post_requests, args=(http, world, record),
                kwargs={"count": 150, "clients": 4, "kinds": ["home_care", "visit"]},
            )  # fmt: skip
            poster.start()
            wait_for(lambda: len(record.acked) >= 40, timeout=60, what="work in flight")
            in_flight = len(check(record).lost)  # acknowledged but not yet placed: their jobs are in Redis
            redis.Redis.from_url(redis_server.url).flushall()
            flushed = time.monotonic()
            poster.join()
            wait_for(lambda: not check(record).lost, timeout=180, interval=1, what="every request to settle")
            settle = time.monotonic() - flushed
    redis_server.stop()
    verdict = check(record)
    print(
        f"\nR3: {verdict.total} requests ({in_flight} in flight at the flush), statuses {verdict.by_status}, "
        f"all settled {settle:.1f} s after FLUSHALL"
    )
    assert in_flight > 0, "the flush must hit work in flight"
    assert verdict.total == 150 and verdict.lost == [] and verdict.double_assigned == []


def test_r4_orphaned_horse_does_not_double_offer(
    fault_env: dict[str, str], logs: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release-the-orphan"
    # Offers must outlive the scenario, so that every offer counted was made by one of the two runs.
    with cluster({**fault_env, "OFFER_TTL_SECONDS": "300", "ASSIGN_SLA_SECONDS": "600"}, logs) as c:
        base = c.api()
        http = Http(base)
        world = build_world(base, elders=5, providers=3, capacity=10)
        slow = c.add(
            "slow-fork", "worker", "--queue", QueueName.MATCH.value, "--class", "fork",
            env={"ELDERCARE_HOLD_AT": f"match.before_apply:{release}"},  # asleep until the test says
        )  # fmt: skip
        record = Record()
        assert slow.process is not None
        parent = psutil.Process(slow.process.pid)
        # The worker forks RQ's scheduler when it starts; the horse is the child forked for the job.
        scheduler_pids = {
            p.pid
            for p in wait_for(lambda: _children(slow, parent), timeout=30, what="the worker's scheduler")
        }
        post_requests(http, world, record, count=5, clients=1, kinds=["home_care"])

        def new_horse() -> psutil.Process | None:
            return next((p for p in parent.children() if p.pid not in scheduler_pids), None)

        horse = wait_for(new_horse, timeout=30, what="the work horse to fork")
        # The horse has taken its snapshot and is held just before applying it.
        waiting = Path(f"{release}.waiting")
        wait_for(waiting.exists, timeout=60, what="the horse to reach its apply point")
        parent.kill()
        assert horse.is_running()
        # A second, healthy worker and the sweeper take over while the orphan is held.
        c.add("match", "worker", "--queue", QueueName.MATCH.value)
        c.add("maintenance", "worker", "--queue", QueueName.MAINTENANCE.value)
        c.add("scheduler", "scheduler")
        wait_for(
            lambda: check(record).by_status.get("offered") == 5, timeout=90, what="the second run's offers"
        )
        assert not _finished(horse)
        release.touch()  # now the orphan wakes up and applies the decisions of its old snapshot
        # Its apply has committed when it logs the batch (the line is written after the commit).
        # Not its exit: what an RQ horse does after its job once its parent is dead is RQ's
        # business (CI saw one linger past 60 s), and in production the supervisor kills the
        # dead worker's whole process group anyway (dispatch/supervisor.py).
        orphan_done = "matched 5 request(s): 0 offered, 0 escalated, 0 waiting, 5 skipped"
        wait_for(
            lambda: orphan_done in (logs / "slow-fork.log").read_text(),
            timeout=60,
            what="the orphaned horse's apply",
        )
        with session_scope(write=False) as s:
            per_request = dict(
                s.exec(select(Offer.request_id, func.count()).group_by(Offer.request_id)).all()
            )
    assert sorted(per_request.values()) == [1, 1, 1, 1, 1], per_request
    assert check(record).by_status == {"offered": 5}
    # The orphan did wake up and try (above): every one of its decisions lost the compare-and-set.


def _children(proc: Proc, parent: psutil.Process) -> list[psutil.Process]:
    """The worker's children; a worker that died on start fails the test with its exit code."""
    if not proc.alive():
        assert proc.process is not None
        pytest.fail(
            f"{proc.name} exited with {proc.process.returncode} on start: {proc.log.read_text()[-2000:]}"
        )
    return parent.children()


def _finished(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # exited; nobody reaps an orphan here
    except psutil.NoSuchProcess:
        return True
