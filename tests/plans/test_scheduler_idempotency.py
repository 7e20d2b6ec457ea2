"""The scheduler creates each occurrence exactly once: two real scheduler processes that decided
the same occurrences at the same moment, a process killed mid-way and run again, and the real
`rq cron` configuration with a worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import func, select

from dispatch.core.clock import local, utcnow
from dispatch.core.db import session_scope
from dispatch.core.faults import CRASH_EXIT_CODE
from dispatch.orders.models import ServiceRequest
from dispatch.plans import calendar
from dispatch.plans import service as plan_service
from dispatch.plans.models import PlanOccurrence, ServicePlan
from tests.helpers import Api, wait_for

ALL_DAYS = [1, 2, 3, 4, 5, 6, 7]
RUN = "import dispatch.app, json, workers.plans as p; print('RESULT ' + json.dumps(p.schedule_plans()))"


def _plans(api: Api, count: int = 6) -> None:
    w = api.world()
    for n in range(count):
        kind = ("meal", "home_care", "day_care")[n % 3]
        api.ok("POST", "/api/plans", w["operator"], 201,
               json={"elder_id": w["elder"]["id"], "kind": kind, "weekdays": ALL_DAYS})  # fmt: skip


def _clear_of_window_starts(margin: timedelta = timedelta(seconds=90)) -> None:
    """The runs below count the occurrences due within the 48-hour horizon. A plan's window
    starting while they run, at `now` or at `now` + 48 h, moves one occurrence in or out of it
    (found at 00:00 UTC, 08:00 in Beijing, when the day-care plans' windows start: the last run
    created two). Wait, with a deadline, until no window starts within `margin`."""
    with session_scope(write=False) as session:
        rules = [plan_service.rule_of(plan) for plan in session.exec(select(ServicePlan))]

    def clear() -> bool:
        now = utcnow()
        today = local(now).date()
        starts = [calendar.window(rule, today + timedelta(days=d))[0] for rule in rules for d in range(-1, 4)]
        return not any(
            timedelta(0) <= start - (now + ahead) <= margin
            for start in starts
            for ahead in (timedelta(0), timedelta(hours=48))
        )

    wait_for(
        clear, timeout=margin.total_seconds() + 30, interval=1.0, what="no plan window to start meanwhile"
    )


def _start(env: dict[str, str], **extra: str) -> subprocess.Popen[str]:
    # 48 hours ahead: each daily plan has exactly two occurrences due, whatever the time of day.
    child = {**os.environ, **env, "PLAN_HORIZON_HOURS": "48", **extra}
    return subprocess.Popen(
        [sys.executable, "-c", RUN], env=child, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))  # type: ignore[no-any-return]


def _occurrences() -> Counter[tuple[int, str]]:
    with session_scope(write=False) as session:
        rows = session.exec(select(PlanOccurrence.plan_id, PlanOccurrence.occurs_on)).all()
    return Counter((plan, day.isoformat()) for plan, day in rows)


def _scheduled_requests() -> int:
    with session_scope(write=False) as session:
        stmt = select(func.count()).select_from(ServiceRequest).where(ServiceRequest.channel == "scheduled")
        return session.exec(stmt).one()


def test_two_schedulers_deciding_at_once_create_each_occurrence_once(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    _plans(api)
    _clear_of_window_starts()
    gates = [tmp_path / "gate-a", tmp_path / "gate-b"]
    runs = [_start(env, ELDERCARE_HOLD_AT=f"plans.decided:{gate}") for gate in gates]
    # Both have read the plans and decided what is missing before either writes anything.
    for gate in gates:
        wait_for(lambda g=gate: Path(f"{g}.waiting").exists(), timeout=90, what=f"{gate.name} to decide")
    for gate in gates:
        gate.touch()
    results = [_result(r) for r in runs]
    assert sum(r["created"] for r in results) == 12  # 6 daily plans x 2 days, between the two runs
    assert sum(r["already"] for r in results) == 12  # ... and each found the other's 12 done
    occurrences = _occurrences()
    assert len(occurrences) == 12 and set(occurrences.values()) == {1}
    assert _scheduled_requests() == 12  # the loser's requests were rolled back with its occurrence


def test_a_scheduler_killed_mid_way_leaves_whole_occurrences_and_the_next_run_finishes(
    api: Api, env: dict[str, str]
) -> None:
    _plans(api)
    _clear_of_window_starts()
    # Killed inside the first occurrence's transaction: nothing of it is left.
    crashed = _start(env, ELDERCARE_CRASH_AT="plans.occurrence_written:1")
    crashed.communicate(timeout=120)
    assert crashed.returncode == CRASH_EXIT_CODE
    assert _occurrences() == Counter() and _scheduled_requests() == 0
    # Killed right after the first occurrence committed: exactly that one is left.
    crashed = _start(env, ELDERCARE_CRASH_AT="plans.occurrence_committed:1")
    crashed.communicate(timeout=120)
    assert crashed.returncode == CRASH_EXIT_CODE
    assert sum(_occurrences().values()) == 1 and _scheduled_requests() == 1
    # The next run does the rest, once each.
    assert _result(_start(env))["created"] == 11
    occurrences = _occurrences()
    assert len(occurrences) == 12 and set(occurrences.values()) == {1}
    assert _scheduled_requests() == 12
    assert _result(_start(env))["created"] == 0


def test_the_cron_configuration_registers_the_plan_and_welfare_jobs() -> None:
    from rq.cron import CronScheduler

    from dispatch.core.config import get_settings
    from dispatch.core.redis import get_redis

    scheduler = CronScheduler(connection=get_redis())
    scheduler.load_config_from_file("workers.cron")
    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    settings = get_settings()
    assert jobs["workers.plans.schedule_plans"].interval == settings.plan_schedule_interval_seconds
    assert jobs["workers.plans.welfare_guarantee"].interval == settings.welfare_check_interval_seconds
    assert jobs["workers.stats.refresh_stats"].interval == settings.stats_refresh_interval_seconds
    assert {job.queue_name for job in jobs.values()} == {"eldercare-maintenance"}


def test_two_rq_cron_schedulers_with_a_worker_create_each_occurrence_once(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    """The real thing: `eldercare scheduler` twice (rq cron) and a maintenance worker, every 5 s."""
    from rq.cron import get_cron_job_ids

    from dispatch.core.redis import get_redis
    from tests.processes import running_platform

    _plans(api, count=3)
    fast = {**env, "PLAN_HORIZON_HOURS": "48", "PLAN_SCHEDULE_INTERVAL_SECONDS": "5"}
    with running_platform(fast, tmp_path) as platform:
        platform.start_worker("eldercare-maintenance")
        platform.start("scheduler-a", "scheduler")
        platform.start("scheduler-b", "scheduler")
        try:
            wait_for(
                lambda: sum(_occurrences().values()) >= 6, timeout=120, what="the cron job to book 6 days"
            )
            runs = lambda: len(get_cron_job_ids("workers.plans.schedule_plans", get_redis()))  # noqa: E731
            wait_for(lambda: runs() >= 6, timeout=120, what="several more cron runs")
        except AssertionError:
            print(platform.logs())
            raise
    occurrences = _occurrences()
    assert len(occurrences) == 6 and set(occurrences.values()) == {1}
    assert _scheduled_requests() == 6
