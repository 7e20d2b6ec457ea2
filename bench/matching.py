"""Matching quality benchmark: one seeded Jinghai day (bench/matching_day.py) replayed through

  (a) greedy   — each request, in arrival order, offered to its nearest feasible provider at
                 once (dispatch.matching.core.decide_greedy, the baseline);
  (b) platform — the platform's matcher (dispatch.matching.batch.decide_batch with the default
                 settings' weights) run as the worker runs it: at most once per batch window,
                 at once for an urgent request;
  (c) optimum  — the hindsight optimum: one min-cost assignment over the whole day, knowing
                 every provider's answer in advance (null when the day is too large for it).

Greedy and platform face the same providers' answers (accept / decline / silence, with delays),
the same offer deadline (90 s) and the same "not placed in time" deadlines (120 s; 30 s urgent);
a request nobody took is escalated and counts as not served. Also times one batch of 1,000
requests x 400 providers. Writes bench/results/matching.json.

    .venv/bin/python bench/matching.py [--requests 3000] [--providers 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as py_platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # CPU time is what is measured: no spinning BLAS threads

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matching_day import Day, hindsight_optimum, history, make_day
from matching_replay import Decide, PlatformMatcher, Replay, pct, summary
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dispatch.matching.batch import decide_batch
from dispatch.matching.core import (
    decide_greedy,
)
from dispatch.matching.scoring import NEAREST, Weights

RESULTS = Path(__file__).resolve().parent / "results" / "matching.json"


def time_big_batch(seed: int, providers: int, n: int = 1000, runs: int = 7) -> dict[str, object]:
    """One batch of n requests against the district at its own (unscaled) capacities."""
    day = make_day(seed=seed, requests=n, providers=providers, scheduled=0.0, ratio=10.0)
    requests = [r for _, r in day.requests]
    times = []
    for _ in range(runs):
        started = time.process_time()
        decisions = decide_batch(requests, day.providers, [], Weights())
        times.append((time.process_time() - started) * 1000)
    return {
        "requests": n,
        "providers": len(day.providers),
        "placed": sum(1 for d in decisions if d.provider_id is not None),
        "cpu_ms_median": round(statistics.median(times), 2),
        "cpu_ms_max": round(max(times), 2),
        "runs": runs,
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--requests", type=int, default=3000, help="requests in the day (default 3000)")
    add("--providers", type=int, default=400, help="providers in the district (default 400)")
    add("--seed", type=int, default=1, help="the day's seed (default 1)")
    add("--window", type=float, default=1.0, help="the platform's batch window, s (default 1)")
    add("--scheduled", type=float, default=0.4, help="share filed by recurring plans at 06:00 (default 0.4)")
    add("--capacity", type=float, default=1.0, help="capacity / demand, per kind (default 1)")
    add("--history", type=int, default=7, help="days of history for the forecast (default 7; 0: no prices)")
    add("--price-every", type=float, default=1800, help="capacity prices refreshed every N s (default 1800)")
    add("--out", type=Path, default=RESULTS, help="where to write the JSON")
    return parser.parse_args()


def _replay_both(
    day: Day, args: argparse.Namespace, progress: Progress
) -> tuple[dict[str, object], dict[str, set[int]]]:
    """Greedy and the platform through the same day: their summaries and whom each served."""
    platform = PlatformMatcher(
        day,
        Weights(),
        history(day, days=args.history, scheduled=args.scheduled) if args.history else [],
        args.history,
        args.price_every,
    )
    matchers: dict[str, tuple[Decide, float]] = {
        "greedy": (
            lambda batch, usage, _t: decide_greedy(batch, day.providers, [], NEAREST, usage=usage),
            0.0,
        ),
        "platform": (platform, args.window),
    }
    results: dict[str, object] = {}
    served: dict[str, set[int]] = {}
    for name, (decide, window) in matchers.items():
        task = progress.add_task(f"replaying the day: {name}", total=len(day.requests))
        replay = Replay(day, decide, window, lambda task=task: progress.advance(task))
        outcomes = replay.run()
        block = summary(outcomes, replay.cpu_ms)
        if decide is platform:
            block["price_refreshes"] = len(platform.price_ms)
            block["price_cpu_ms_mean"] = (
                round(statistics.mean(platform.price_ms), 1) if platform.price_ms else None
            )
        results[name] = block
        served[name] = {rid for rid, o in outcomes.items() if o.served_km is not None}
    return results, served


def _optimum(day: Day, results: dict[str, object], served: dict[str, set[int]], progress: Progress) -> None:
    """The hindsight optimum of the day, and the least travel that would have served exactly
    what each matcher served (its travel efficiency, apart from how many it served)."""
    task = progress.add_task("hindsight optimum (LP)", total=1 + len(served))
    best = hindsight_optimum(day)
    results["optimum"] = None if best is None else _optimum_summary(len(day.requests), *best)
    progress.advance(task)
    for name, ids in served.items():
        same = hindsight_optimum(day, only=ids)
        block = results[name]
        assert isinstance(block, dict)
        block["travel_km_optimum_same_served"] = None if same is None else round(sum(same[1]), 1)
        progress.advance(task)


def main() -> None:
    args = _arguments()
    console = Console()
    wall = time.perf_counter()
    day = make_day(
        seed=args.seed,
        requests=args.requests,
        providers=args.providers,
        scheduled=args.scheduled,
        ratio=args.capacity,
    )
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        results, served = _replay_both(day, args, progress)
        _optimum(day, results, served, progress)
        task = progress.add_task("one batch: 1,000 x providers", total=1)
        results["batch_1000"] = time_big_batch(args.seed, args.providers)
        progress.advance(task)
    report = {
        "command": "python bench/matching.py " + " ".join(sys.argv[1:]),
        "seed": args.seed,
        "requests": args.requests,
        "providers": len(day.providers),
        "batch_window_s": args.window,
        "scheduled_share": args.scheduled,
        "capacity_over_demand": args.capacity,
        "history_days": args.history,
        **results,
        "targets": _targets(results),
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time(), 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": py_platform.python_version(),
            "platform": py_platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _print(console, report, args.out)


def _optimum_summary(n: int, served: int, km: list[float], cpu_s: float) -> dict[str, object]:
    return {
        "requests": n,
        "served": served,
        "served_share": round(served / max(n, 1), 4),
        "travel_km_total": round(sum(km), 1),
        "travel_km_mean": round(statistics.mean(km), 3) if km else None,
        "travel_km_p95": pct(km, 0.95),
        "wait_s_mean": None,  # hindsight: nobody waits for an answer already known
        "wait_s_p95": None,
        "offers_per_request": 1.0,
        "batches": 1,
        "cpu_ms_per_batch_p95": round(cpu_s * 1000, 1),
    }


def _targets(results: dict[str, object]) -> dict[str, object]:
    g, p, o = (results.get(k) for k in ("greedy", "platform", "optimum"))
    assert isinstance(g, dict) and isinstance(p, dict)
    big = results["batch_1000"]
    assert isinstance(big, dict)
    out: dict[str, object] = {
        "served_at_least_greedy": p["served"] >= g["served"],
        "travel_vs_greedy": round(p["travel_km_total"] / g["travel_km_total"], 3),
        "travel_at_most_0_8_greedy": p["travel_km_total"] <= 0.8 * g["travel_km_total"],
        "batch_1000_under_100_ms": big["cpu_ms_median"] < 100,
    }
    if p.get("travel_km_optimum_same_served"):
        out["travel_vs_optimum_same_served"] = round(
            p["travel_km_total"] / p["travel_km_optimum_same_served"], 3
        )
        out["greedy_travel_vs_optimum_same_served"] = round(
            g["travel_km_total"] / g["travel_km_optimum_same_served"], 3
        )
    if isinstance(o, dict):
        out["travel_vs_optimum"] = round(p["travel_km_total"] / o["travel_km_total"], 3)
        out["travel_at_most_1_05_optimum"] = p["travel_km_total"] <= 1.05 * o["travel_km_total"]
        out["greedy_travel_vs_optimum"] = round(g["travel_km_total"] / o["travel_km_total"], 3)
    return out


def _print(console: Console, report: dict[str, object], out: Path) -> None:
    table = Table(
        title=f"Matching a Jinghai day: {report['requests']} requests, {report['providers']} providers, seed {report['seed']}"
    )
    keys = ("served", "travel_km_total", "travel_km_optimum_same_served", "travel_km_mean", "travel_km_p95",
            "first_offer_wait_s_p95", "wait_s_mean", "wait_s_p95",
            "offers_per_request", "cpu_ms_per_batch_p95")  # fmt: skip
    table.add_column("")
    for name in ("greedy", "platform", "optimum"):
        table.add_column(name, justify="right")
    for key in keys:
        row = []
        for name in ("greedy", "platform", "optimum"):
            block = report.get(name)
            value = block.get(key) if isinstance(block, dict) else None
            row.append("—" if value is None else str(value))
        table.add_row(key, *row)
    console.print(table)
    console.print("one batch of 1,000 requests:", report["batch_1000"])
    console.print("targets:", report["targets"])
    console.print(f"wrote {out} in {report['wall_s']} s ({report['cpu_s']} s of CPU)")


if __name__ == "__main__":
    main()
