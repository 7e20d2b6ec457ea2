"""One phase of bench/load.py, alone, with where the CPU went: for comparing two versions of the
code quickly (the figures of the README's "tried" notes come from runs of this).

Starts the platform as bench/load.py does (its own temporary district), warms it up, then drives
the whole pipeline at RATE requests/s for DURATION seconds (every offer accepted by its provider)
and prints each process's CPU milliseconds per request during the phase, with the phase's intake
and pipeline figures. `--profile` also records py-spy (raw format, for flame graphs or grep) of
the API and the match worker during the phase into bench/results/profile-<name>.txt.

    .venv/bin/python bench/drive.py 500 8 [--profile [--gil]] [--no-accept] [--batch-window 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for `dispatch`
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _phases
import load
import psutil
from _consoles import Observer, ws_url
from _http import Pool
from _platform import Platform

RESULTS = Path(__file__).parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rate", type=float, help="requests per second")
    parser.add_argument("duration", type=float, help="seconds")
    parser.add_argument("--profile", action="store_true", help="py-spy the API and the match worker")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="with --profile: only the thread holding the GIL (where the CPU goes; threads waiting for it are left out)",
    )
    parser.add_argument("--no-accept", action="store_true", help="providers do not accept (intake only)")
    parser.add_argument("--batch-window", type=float, default=0.1)
    load.add_client_gc_argument(parser)
    return parser.parse_args()


def cpu_seconds(platform: Platform, redis_pid: int | None) -> dict[str, tuple[float, float]]:
    """Each process's (user, system) CPU seconds so far, its children's included; and the load
    generator's own (this process) and the embedded Redis's, which share the same two cores."""
    own = psutil.Process().cpu_times()
    out: dict[str, tuple[float, float]] = {"loadgen": (own.user, own.system)}
    if redis_pid is not None:
        times = psutil.Process(redis_pid).cpu_times()
        out["redis"] = (times.user, times.system)
    for proc in platform.procs:
        user = system = 0.0
        for p in proc.tree():
            try:
                times = p.cpu_times()
            except Exception:
                continue
            user, system = user + times.user, system + times.system
        out[proc.name] = (user, system)
    return out


async def phase(run: Any, platform: Platform, workload: Any, args: argparse.Namespace) -> None:
    observer = Observer(ws_url(platform.base, workload.operator_token))
    await observer.start()
    accepts = Pool("127.0.0.1", platform.port, load.ACCEPT_CONNECTIONS)
    if args.no_accept:

        async def nothing(_raw: bytes) -> tuple[int, bytes]:
            return 0, b""

        accepts.request = nothing  # type: ignore[method-assign]
    try:
        await _phases.drive(run, platform, workload, observer, _phases.Phase("warm-up", 50, 3), accepts)
        spies = []
        if args.profile:
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            for proc in platform.procs:
                if proc.name in ("api", "match") and proc.popen is not None:
                    out = RESULTS / f"profile-{proc.name}.txt"
                    spies.append(
                        subprocess.Popen(
                            [
                                spy,
                                "record",
                                "-p",
                                str(proc.popen.pid),
                                "-r",
                                "100",
                                "-d",
                                str(int(args.duration)),
                                "-f",
                                "raw",
                                "-o",
                                str(out),
                                "--nonblocking",
                                *(["--gil"] if args.gil else []),
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )  # fmt: skip
                    )
        redis_pid = run.redis.process.pid if run.redis is not None else None
        before, started = cpu_seconds(platform, redis_pid), time.monotonic()
        driven = await _phases.drive(
            run, platform, workload, observer, _phases.Phase("drive", args.rate, args.duration), accepts
        )
        after = cpu_seconds(platform, redis_pid)
        for spy_process in spies:
            spy_process.wait()
        n = max(1, len(driven.scheduled))
        print(f"wall {time.monotonic() - started:.1f} s, {n} requests")
        spent = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in after}
        print("CPU ms per request:", {k: round((u + s) * 1000 / n, 2) for k, (u, s) in spent.items()})
        print("  of which system:", {k: round(s * 1000 / n, 2) for k, (_u, s) in spent.items()})
        print("intake:", _phases.intake_figures(driven))
        print("pipeline:", _phases.pipeline_figures(driven, observer))
    finally:
        accepts.close()
        await observer.stop()


def main() -> None:
    args = parse_args()
    load_args = argparse.Namespace(
        rate=args.rate, pipeline_rate=args.rate, fanout_rate=100, consoles=0, duration=args.duration,
        naive_rate=None, soak=0, api_workers=1, batch_window=args.batch_window, connections=64,
        skip_naive=True, out=RESULTS / "drive.json", client_gc=args.client_gc,
    )  # fmt: skip
    run = load.Run(load_args)
    run.start_redis()
    workload = run.seed()
    load.settle_client_gc(load_args)
    platform = Platform(run.env, run.logs)
    platform.start(match_env={"LOG_LEVEL": "INFO"})
    try:
        workload.login_all(platform.base)
        with run.progress:
            asyncio.run(phase(run, platform, workload, args))
    finally:
        platform.stop()
        if run.redis is not None:
            run.redis.stop()


if __name__ == "__main__":
    main()
