"""The platform as an operator of the machine sees it: job names, the demo seed, and
`eldercare up` supervising real processes with one shared embedded Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from rq.utils import import_attribute
from sqlmodel import func, select

from dispatch.core.auth import User
from dispatch.core.db import session_scope
from dispatch.core.jobs import JobName
from dispatch.core.redis import free_port
from dispatch.demo.seed import seed_demo
from dispatch.elders.models import Elder
from services.models import Caregiver, Provider
from tests.helpers import wait_for


def test_every_job_name_resolves() -> None:
    for name in JobName:
        assert callable(import_attribute(name.value)), name


def _census() -> dict[str, int]:
    with session_scope(write=False) as s:
        counts = {
            kind: s.exec(select(func.count()).select_from(Provider).where(Provider.kind == kind)).one()
            for kind in ("day_care", "canteen", "home_care")
        }
        counts["caregivers"] = s.exec(select(func.count()).select_from(Caregiver)).one()
        counts["elders"] = s.exec(select(func.count()).select_from(Elder)).one()
        counts["townships"] = len(set(s.exec(select(Elder.township)).all()))
        counts["users"] = s.exec(select(func.count()).select_from(User)).one()
    return counts


def test_demo_seed_is_the_district_and_idempotent() -> None:
    with session_scope() as session:
        first = seed_demo(session)
    census = _census()
    assert census["day_care"] == 324 and census["canteen"] == 36 and census["home_care"] >= 20
    assert census["caregivers"] >= 100 and census["elders"] >= 2000 and census["townships"] == 18
    assert census["users"] == 7 and first.elders == census["elders"]
    with session_scope() as session:
        again = seed_demo(session)
    assert (again.providers, again.caregivers, again.elders, again.users) == (0, 0, 0, 0)
    assert _census() == census


@pytest.mark.e2e
def test_up_supervises_restarts_and_stops_everything(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    child_env = {**os.environ, **env, "PORT": str(port), "VAR_DIR": str(tmp_path / "var")}
    del child_env["REDIS_URL"]  # `up` must start (and later stop) its own embedded Redis
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen([sys.executable, "-m", "dispatch.cli", "up"], env=child_env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=60, what="the API under `up`")
        children = psutil.Process(up.pid).children()
        redis_servers = [p for p in children if "redis-server" in p.name()]
        assert len(redis_servers) == 1, "exactly one embedded Redis, shared by all"
        api = next(p for p in children if "serve" in p.cmdline())
        api.send_signal(signal.SIGKILL)
        wait_for(lambda: not ready(), timeout=10, what="the API to go down")
        wait_for(ready, timeout=60, what="the supervisor to restart the API")
        assert "api exited with code -9; restarting" in (tmp_path / "up.log").read_text()
        # A worker killed hard leaves RQ's scheduler (its child) behind; the supervisor stops it,
        # or it would keep the queue's scheduler lock from the restarted worker.
        worker = next(p for p in psutil.Process(up.pid).children() if "eldercare-match" in p.cmdline())
        orphan = wait_for(worker.children, timeout=30, what="the match worker's RQ scheduler")[0]
        worker.send_signal(signal.SIGKILL)
        wait_for(lambda: not _running(orphan), timeout=30, what="the orphaned scheduler to be stopped")
        wait_for(
            lambda: (
                "worker:match exited with code -9 (and stopped 1 process(es) it left behind)"
                in " ".join((tmp_path / "up.log").read_text().split())  # the console wraps lines
            ),
            timeout=10,
            what="the supervisor's log line",
        )
        every = psutil.Process(up.pid).children(recursive=True)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=30)
        log.close()
    assert up.returncode == 0
    # Each process stopped on its own when asked, none killed at the supervisor's deadline (RQ's
    # command channel was polled every 60 s, and a worker stopping waited for that poll).
    assert "did not stop" not in (tmp_path / "up.log").read_text()
    gone, alive = psutil.wait_procs(every, timeout=10)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    assert not (tmp_path / "var" / "redis" / "redis.sock").exists()


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
