"""Load benchmark of the whole pipeline, on real processes over loopback.

Starts the platform as production runs it (`eldercare serve`, one RQ worker per queue,
`eldercare scheduler`, the embedded Redis or REDIS_URL, SQLite or DATABASE_URL), seeds the
demo district, and drives it with an open-loop load (requests of every kind from every
township, providers accepting their offers through the API, consoles on the websocket):

  ceiling   a bare FastAPI route that only pushes to Redis (bench/ceiling_app.py), saturated
  intake    POST /api/requests at --rate per second: sustained rate, p50/p99 latency
  capacity  POST /api/requests saturated as the ceiling is (--capacity-clients clients back
            to back, the whole pipeline behind it): the intake's own rate, for its ratio to
            the ceiling
  pipeline  at --pipeline-rate: POST -> request.offered at a console -> accept -> request.assigned
  fan-out   --consoles consoles (and one that never reads) while requests flow at --fanout-rate
  naive     the same pipeline with RQ's forking worker and one match job per request
  soak      (--soak S) the pipeline for S seconds: memory must stay flat once warm

Every figure comes from one run on one machine, so ratios (to the ceiling, to the naive
pipeline) hold on a noisy box. Writes bench/results/load.json and prints a table.

    .venv/bin/python bench/load.py                     # the defaults of the README table
    .venv/bin/python bench/load.py --duration 5 --consoles 50 --skip-naive   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as py_platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for `dispatch`
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _phases
from _consoles import CLIENT_GC_THRESHOLD, Observer, ws_url
from _http import Pool, build_request, closed_loop
from _platform import Platform, Proc, free_port, wait_http
from _workload import Workload, prepare_district
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dispatch.core.collector import settle_collector

RESULTS = Path(__file__).parent / "results"
# The providers' phones, each with a connection of its own: 384 in the demo district. With 32
# the accepts queued in the load generator itself (each waits ~20-60 ms for its batch's commit).
ACCEPT_CONNECTIONS = 128
# After the capacity phase: its requests all served before anything else is measured.
CAPACITY_DRAIN_SECONDS = 60.0
console = Console()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000, help="intake requests per second")
    parser.add_argument("--pipeline-rate", type=float, default=500, help="pipeline requests per second")
    parser.add_argument("--fanout-rate", type=float, default=100, help="requests/s during the fan-out phase")
    parser.add_argument("--consoles", type=int, default=200, help="consoles connected in the fan-out phase")
    parser.add_argument("--duration", type=float, default=15, help="seconds per phase")
    parser.add_argument(
        "--naive-rate", type=float, default=None, help="naive pipeline rate (default: pipeline)"
    )
    parser.add_argument("--soak", type=float, default=0, help="seconds of pipeline load to watch memory")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--batch-window", type=float, default=0.1, help="BATCH_WINDOW_SECONDS")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections of the load")
    parser.add_argument(
        "--capacity-clients",
        type=int,
        default=256,
        help="clients of the intake capacity phase (enough that the group commit, not the "
        "clients' round trips, bounds the rate)",
    )
    parser.add_argument("--skip-naive", action="store_true")
    add_client_gc_argument(parser)
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    return parser.parse_args()


def add_client_gc_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client-gc",
        choices=("settled", "python"),
        default="settled",
        help="the load generator's and the consoles' own garbage collector: settled as the "
        "platform's processes settle theirs (the default since stop 18), or Python's defaults",
    )


def settle_client_gc(args: argparse.Namespace) -> None:
    """The measuring processes' collector settled as the platform's processes settle theirs
    (dispatch/core/collector.py): with Python's defaults a full collection of the load
    generator paused it ~90 ms, and every answer that arrived meanwhile was timed that much late."""
    if args.client_gc == "settled":
        settle_collector(CLIENT_GC_THRESHOLD)


def base_env(tmp: Path, batch_window: float) -> dict[str, str]:
    env = {
        "VAR_DIR": str(tmp / "var"),
        "SECRET_KEY": "bench-secret-key-0123456789-0123456789-0123456789",
        "LOG_LEVEL": "WARNING",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8192",
        "OFFER_TTL_SECONDS": "300",
        # The bench measures the machine, not the operators: nothing is escalated for lateness.
        "ASSIGN_SLA_SECONDS": "3600",
        "URGENT_SLA_SECONDS": "3600",
        "BATCH_WINDOW_SECONDS": str(batch_window),
        # Like the providers' capacities (prepare_district): the bench's jobs never finish, so
        # the caregivers' cap would escalate most requests all_full (the matcher still checks it).
        "CAREGIVER_MAX_JOBS": "100000",
        "WS_CLIENT_QUEUE": "5000",
    }
    env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    return env


class Run:
    """One benchmark run: its processes, its load, its figures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="eldercare-bench-load-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.env = base_env(self.tmp, args.batch_window)
        self.results: dict[str, Any] = {}
        self.redis: Any = None
        self.progress = Progress(
            TextColumn("[bold]{task.description:<28}"), BarColumn(), TimeElapsedColumn(), console=console
        )

    # ---- set-up -----------------------------------------------------------------------------

    def start_redis(self) -> None:
        if os.environ.get("REDIS_URL"):
            self.env["REDIS_URL"] = os.environ["REDIS_URL"]
            return
        from dispatch.core.redis import EmbeddedRedis

        self.redis = EmbeddedRedis(self.tmp / "redis")
        self.env["REDIS_URL"] = self.redis.start()

    def seed(self, env: dict[str, str] | None = None) -> Workload:
        os.environ.update(env or self.env)
        from dispatch.core.config import get_settings

        get_settings.cache_clear()
        proc = Proc(
            "seed",
            [sys.executable, "-m", "dispatch.cli", "seed", "--demo"],
            {**os.environ},
            self.logs / "seed.log",
        )
        proc.start()
        assert proc.popen is not None
        if proc.popen.wait() != 0:
            raise RuntimeError(f"seeding failed: {proc.log.read_text()[-2000:]}")
        return prepare_district()

    # ---- phases -----------------------------------------------------------------------------

    def ceiling(self) -> None:
        asyncio.run(self.measure_ceiling())

    async def measure_ceiling(self) -> float:
        """One measurement of the bare route's rate, added to `ceiling_runs_rps`: the run takes
        two, one before the platform starts and one right before the intake capacity phase
        (the platform idle), and `ceiling_rps` is their mean (derive())."""
        port = free_port()
        proc = Proc(
            "ceiling",
            [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            {**os.environ, **self.env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            self.logs / "ceiling.log",
        )  # fmt: skip
        proc.start()
        try:
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/docs")
            body = {"elder_id": 1, "kind": "meal", "details": {"slot": "lunch"}, "note": ""}
            raw = build_request("POST", "/api/requests", f"127.0.0.1:{port}", body)
            stats = await self._saturate(port, lambda _i: raw, seconds=min(self.args.duration, 8))
            ok = [r for r in stats.results if r.status == 202]
            span = max(r.done for r in ok) - min(r.sent for r in ok)
            rps = round(len(ok) / span, 1)
        finally:
            proc.stop()
        self.results.setdefault("ceiling_runs_rps", []).append(rps)
        return rps

    async def _saturate(self, port: int, make: Any, seconds: float) -> Any:
        pool = Pool("127.0.0.1", port, self.args.connections)
        try:
            await closed_loop(pool, make, clients=self.args.connections, duration=1.0)  # warm up
            return await closed_loop(pool, make, clients=self.args.connections, duration=seconds)
        finally:
            pool.close()


def run_all(run: Run) -> None:
    args = run.args
    with run.progress:
        setup = run.progress.add_task("seed the demo district", total=None)
        run.start_redis()
        workload = run.seed()
        settle_client_gc(args)
        run.progress.update(setup, total=1, completed=1)
        task = run.progress.add_task("ceiling: bare route", total=None)
        run.ceiling()
        run.progress.update(task, total=1, completed=1)
        run.results["machine"] = machine(run.env)
        platform = Platform(run.env, run.logs, probe=bool(args.soak))
        platform.start(api_workers=args.api_workers, match_env={"LOG_LEVEL": "INFO"})
        try:
            workload.login_all(platform.base)
            asyncio.run(platform_phases(run, platform, workload))
        finally:
            platform.stop()
        if not args.skip_naive:
            # A district of its own, freshly seeded: the same empty capacities as the first run
            # had, and none of its events for the observer to replay (a shared DATABASE_URL is
            # reused; the observer then starts after its last event).
            env = {**run.env, "MATCH_MODE": "per_request"}
            if not os.environ.get("DATABASE_URL"):
                env["DATABASE_URL"] = f"sqlite:///{run.tmp / 'naive.db'}"
            (run.logs / "naive").mkdir()
            run.logs = run.logs / "naive"
            workload = run.seed(env)
            naive = Platform(env, run.logs)
            naive.start(worker_class="fork", match_env={"LOG_LEVEL": "INFO"})
            try:
                workload.login_all(naive.base)
                asyncio.run(naive_phase(run, naive, workload))
            finally:
                naive.stop()
    derive(run.results)
    console.print(_phases.table(run.results))


async def platform_phases(run: Run, platform: Platform, workload: Workload) -> None:
    args, r = run.args, run.results
    observer = Observer(ws_url(platform.base, workload.operator_token))
    await observer.start()
    accept_pool = Pool("127.0.0.1", platform.port, ACCEPT_CONNECTIONS)
    try:
        warm = await _phases.drive(
            run, platform, workload, observer, _phases.Phase("warm-up", 50, 3), accept_pool
        )
        del warm
        intake = await _phases.drive(
            run, platform, workload, observer, _phases.Phase("intake", args.rate, args.duration), accept_pool
        )
        r["intake"] = _phases.intake_figures(intake)
        r["intake_pipeline"] = _phases.pipeline_figures(intake, observer)
        pipe = await _phases.drive(
            run, platform, workload, observer,
            _phases.Phase("pipeline", args.pipeline_rate, args.duration), accept_pool,
        )  # fmt: skip
        r["pipeline"] = _phases.pipeline_figures(pipe, observer)
        r["pipeline_intake"] = _phases.intake_figures(pipe)
        r["fanout"] = await _phases.fanout(run, platform, workload, observer, accept_pool)
        # The bare route again, just before the phase whose ratio to it is the headline: the
        # machine's speed drifted by up to a third within one run on a shared host (stop 19).
        task = run.progress.add_task("ceiling again: bare route", total=None)
        await run.measure_ceiling()
        run.progress.update(task, total=1, completed=1)
        # Last but the soak: the backlog it may leave behind in the pipeline is drained first.
        capacity = await _phases.drive(
            run, platform, workload, observer,
            _phases.Phase("intake capacity", 0, min(args.duration, 8), clients=args.capacity_clients,
                          drain=CAPACITY_DRAIN_SECONDS),
            accept_pool,
        )  # fmt: skip
        r["intake_capacity"] = _phases.intake_figures(capacity)
        r["intake_capacity_pipeline"] = _phases.pipeline_figures(capacity, observer)
        soak_from = None
        if args.soak:
            soak_from = time.monotonic() + args.soak * 0.2
            soak = await _phases.drive(
                run, platform, workload, observer,
                _phases.Phase("soak", args.pipeline_rate, args.soak), accept_pool,
            )  # fmt: skip
            r["soak"] = _phases.pipeline_figures(soak, observer)
        r["matching"] = _phases.matching_cpu(platform)
        r["processes"] = _phases.resources(platform, soak_from)
        r["observer_closed_with"] = observer.closed_with
    finally:
        accept_pool.close()
        await observer.stop()


async def naive_phase(run: Run, platform: Platform, workload: Workload) -> None:
    from dispatch.core.db import session_scope
    from dispatch.core.events import last_seq

    with session_scope(write=False) as session:
        since = last_seq(session)
    observer = Observer(ws_url(platform.base, workload.operator_token, since))
    await observer.start()
    accept_pool = Pool("127.0.0.1", platform.port, ACCEPT_CONNECTIONS)
    rate = run.args.naive_rate or run.args.pipeline_rate
    try:
        phase = await _phases.drive(
            run,
            platform,
            workload,
            observer,
            _phases.Phase("naive pipeline", rate, run.args.duration),
            accept_pool,
        )
        run.results["naive"] = _phases.pipeline_figures(phase, observer)
        run.results["naive"]["intake"] = _phases.intake_figures(phase)
        run.results["naive"]["processes"] = _phases.resources(platform)
    finally:
        accept_pool.close()
        await observer.stop()


def derive(r: dict[str, Any]) -> None:
    """The headline keys of bench/results/load.json."""
    intake, pipe, fan = r.get("intake", {}), r.get("pipeline", {}), r.get("fanout", {})
    procs = r.get("processes", {})
    r["intake_rps"] = intake.get("rps")
    r["intake_p50_ms"] = intake.get("p50_ms")
    r["intake_p99_ms"] = intake.get("p99_ms")
    r["pipeline_rps"] = pipe.get("rps")
    r["offered_p99_ms"] = pipe.get("offered_p99_ms")
    r["assigned_p99_ms"] = pipe.get("assigned_p99_ms")
    r["fanout_deliveries_per_s"] = fan.get("deliveries_per_s")
    r["fanout_p99_ms"] = fan.get("p99_ms")
    r["naive_pipeline_rps"] = r.get("naive", {}).get("rps")
    r["api_peak_mb"] = procs.get("api", {}).get("peak_rss_mb")
    workers = [v["peak_rss_mb"] for k, v in procs.items() if k in ("match", "notify", "maintenance")]
    r["worker_peak_mb"] = max(workers) if workers else None
    r["intake_capacity_rps"] = r.get("intake_capacity", {}).get("rps")
    runs = r.get("ceiling_runs_rps") or []
    if runs:
        r["ceiling_rps"] = round(sum(runs) / len(runs), 1)
    # Like with like: the intake saturated as the bare route was, not at the offered --rate
    # (at 1,000/s offered the ratio could never pass 1,000 / ceiling, 0.18 on a fast hour).
    if r.get("ceiling_rps") and r.get("intake_capacity_rps"):
        r["intake_to_ceiling"] = round(r["intake_capacity_rps"] / r["ceiling_rps"], 2)
    if r.get("naive_pipeline_rps") and r.get("pipeline_rps"):
        r["pipeline_to_naive"] = round(r["pipeline_rps"] / r["naive_pipeline_rps"], 1)


def main() -> None:
    args = parse_args()
    run = Run(args)
    try:
        run_all(run)
    finally:
        if run.redis is not None:
            run.redis.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(run.results, indent=2, ensure_ascii=False) + "\n")
    console.print(f"\nwritten to {args.out}  (process logs in {run.tmp / 'logs'})")


def machine(env: dict[str, str]) -> dict[str, Any]:
    import redis

    info = redis.Redis.from_url(env["REDIS_URL"]).info("server")
    url = env["DATABASE_URL"]
    return {
        "cores": os.cpu_count(),
        "python": py_platform.python_version(),
        "redis": f"{info.get('redis_version')} ({'embedded' if 'unix' in env['REDIS_URL'] or not os.environ.get('REDIS_URL') else 'REDIS_URL'})",
        "database": re.sub(r"//[^@/]*@", "//", url.split("?")[0])
        if not url.startswith("sqlite")
        else "sqlite",
        "platform": py_platform.platform(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


if __name__ == "__main__":
    main()
