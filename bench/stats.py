"""How fast the statistics answer on the demo district with a year of history (the goal: the
summary under a second).

Seeds the demo district and `--history` days of synthetic history into a fresh SQLite database
(or reuses `--var-dir` if it already holds them), then times the manager page's calls through
the API in-process (ASGI: authentication, queries, JSON), each `--repeat` times. Prints wall
time (what a manager waits) and the process's CPU time (the work itself, whatever else the
machine is doing) as median / min / max.

    .venv/bin/python bench/stats.py [--history 365] [--repeat 7] [--var-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=365, help="days of history to seed")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each call")
    parser.add_argument("--var-dir", type=Path, default=None, help="reuse this VAR_DIR (seeded once)")
    args = parser.parse_args()
    tmp = args.var_dir or Path(tempfile.mkdtemp(prefix="eldercare-bench-stats-"))
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ.update(VAR_DIR=str(tmp), DATABASE_URL=f"sqlite:///{tmp / 'eldercare.db'}", LOG_LEVEL="WARNING",
                      SECRET_KEY="bench-secret-key-0123456789-0123456789")  # fmt: skip
    os.environ.pop("REDIS_URL", None)

    from fastapi.testclient import TestClient

    from dispatch.app import create_app
    from dispatch.core.clock import local, utcnow
    from dispatch.core.db import migrate, session_scope
    from dispatch.core.redis import EmbeddedRedis
    from dispatch.demo.history import seed_history
    from dispatch.demo.seed import seed_demo

    redis = EmbeddedRedis(tmp / "redis")
    os.environ["REDIS_URL"] = redis.start()
    try:
        migrate()
        started, cpu = time.perf_counter(), time.process_time()
        with session_scope() as session:
            seed_demo(session)
            report = seed_history(session, days=args.history)
        if not report.skipped:
            print(f"seeded {report.requests:,} requests, {report.visits:,} visits over {report.days} days in "
                  f"{time.perf_counter() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")  # fmt: skip
        today = local(utcnow()).date()
        year = f"from={today - timedelta(days=364)}&to={today}"
        last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        calls = {
            "summary, last 30 days (default)": "/api/stats/summary",
            "summary, 365 days": f"/api/stats/summary?{year}",
            "summary, 365 days, one township": f"/api/stats/summary?{year}&township=静海镇",
            "breakdown by day, 365 days": f"/api/stats/breakdown?by=day&{year}",
            "breakdown by provider, 365 days": f"/api/stats/breakdown?by=provider&{year}",
            "distribution, 365 days": f"/api/stats/distribution?{year}",
            "indicators, last 30 days": "/api/stats/indicators",
            f"ledger {last_month}": f"/api/stats/ledger?month={last_month}",
            "who is overdue": "/api/welfare/overdue",
        }
        with TestClient(create_app()) as client:
            token = client.post("/api/auth/token", data={"username": "manager", "password": "demo-manager"})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            print(
                f"statistics API, in-process ASGI, SQLite, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
            )
            for name, path in calls.items():
                walls, cpus = [], []
                for _ in range(args.repeat):
                    w, c = time.perf_counter(), time.process_time()
                    response = client.get(path, headers=headers)
                    walls.append(time.perf_counter() - w)
                    cpus.append(time.process_time() - c)
                    assert response.status_code == 200, response.text
                print(f"  {name:34s} wall {_ms(walls)}   CPU {_ms(cpus)}")
    finally:
        redis.stop()


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:6.0f} ms (min {min(samples) * 1000:5.0f}, max {max(samples) * 1000:5.0f})"


if __name__ == "__main__":
    main()
