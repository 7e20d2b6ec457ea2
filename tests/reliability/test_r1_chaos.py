"""R1: 300 requests from 8 concurrent clients, 2 matching workers, 6 random SIGKILLs of
workers (some mid-job) and one Redis SIGKILL and restart. Every acknowledged request must end
assigned/completed/cancelled or escalated to an operator; none double-assigned; no provider
over capacity at any sampled moment."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from dispatch.core.jobs import QueueName
from tests.helpers import wait_for
from tests.reliability.harness import (
    Answerer,
    ControlledRedis,
    Http,
    Record,
    build_world,
    check,
    cluster,
    post_requests,
)

pytestmark = [pytest.mark.fault, pytest.mark.e2e]

REQUESTS, CLIENTS, KILLS = 300, 8, 6


def test_r1_kills_and_a_redis_restart_lose_nothing(
    fault_env: dict[str, str], logs: Path, tmp_path: Path
) -> None:
    redis_server = ControlledRedis(tmp_path / "redis")
    redis_server.start()
    env = {**fault_env, "REDIS_URL": redis_server.url}
    rng = random.Random(1)
    with cluster(env, logs) as c:
        base = c.api()
        slow = {"ELDERCARE_SLOW_AT": "match.before_apply:0.3"}  # so that kills land mid-job
        for n in (1, 2):
            c.add(f"match-{n}", "worker", "--queue", QueueName.MATCH.value, env=slow)
        c.add("notify", "worker", "--queue", QueueName.NOTIFY.value)
        c.add("maintenance", "worker", "--queue", QueueName.MAINTENANCE.value)
        c.add("scheduler", "scheduler")
        c.watch()
        http = Http(base)
        world = build_world(base, elders=40, providers=12, capacity=40)
        record = Record()
        over_capacity: list[list[int]] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(1.0):
                over_capacity.append(check(record).over_capacity)

        def chaos() -> None:
            victims = ["match-1", "match-2", "notify", "maintenance"]
            for n in range(KILLS):
                time.sleep(rng.uniform(1.0, 3.0))
                c.procs[rng.choice(victims if n % 2 else ["match-1", "match-2"])].kill(signal.SIGKILL)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with Answerer(http, world):
            killer = threading.Thread(target=chaos)
            killer.start()
            poster = threading.Thread(
                target=post_requests, args=(http, world, record),
                kwargs={"count": REQUESTS, "clients": CLIENTS, "kinds": ["home_care", "visit"]},
            )  # fmt: skip
            poster.start()
            time.sleep(4)
            redis_server.kill()
            time.sleep(1.5)
            redis_server.start()
            restarted = time.monotonic()
            probe = http.ok("POST", "/api/requests", world.operator, 202,
                            json={"elder_id": world.elders[0], "kind": "visit"})  # fmt: skip
            wait_for(
                lambda: http.ok("GET", f"/api/requests/{probe['id']}", world.operator)["status"] != "queued",
                timeout=120, what="the pipeline to recover after the Redis restart",
            )  # fmt: skip
            recovery = time.monotonic() - restarted
            poster.join()
            killer.join()
            try:
                wait_for(
                    lambda: not check(record).lost, timeout=240, interval=1, what="every request to settle"
                )
            finally:
                sampling.set()
        verdict = check(record)
        print(
            f"\nR1: {verdict.total} acknowledged, statuses {verdict.by_status}, lost {len(verdict.lost)}, "
            f"double-assigned {len(verdict.double_assigned)}, process restarts {c.restarts}, "
            f"recovery after Redis restart {recovery:.1f} s"
        )
    redis_server.stop()
    assert verdict.total == REQUESTS
    assert verdict.lost == [], verdict.lost
    assert verdict.double_assigned == []
    assert all(not sample for sample in over_capacity) and verdict.over_capacity == []
    assert c.restarts >= KILLS
