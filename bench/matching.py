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
import heapq
import json
import os
import platform as py_platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # CPU time is what is measured: no spinning BLAS threads

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matching_day import Day, hindsight_optimum, history, make_day
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dispatch.core.geo import haversine_km
from dispatch.matching.batch import decide_batch
from dispatch.matching.core import (
    WAIT,
    CapacityKey,
    Decision,
    ProviderInfo,
    RequestInfo,
    Usage,
    decide_greedy,
)
from dispatch.matching.prices import aggregate, capacity_prices
from dispatch.matching.scoring import NEAREST, Weights

RESULTS = Path(__file__).resolve().parent / "results" / "matching.json"
SLA_S = {"urgent": 30.0, "high": 120.0, "normal": 120.0}
Decide = Callable[[list[RequestInfo], Usage, float], list[Decision]]


@dataclass
class Outcome:
    created: float
    offers: int = 0
    first_offer: float | None = None
    offered_at: float = 0.0
    open_offer: tuple[int, int | None] | None = None  # (provider, caregiver) of the pending offer
    served_km: float | None = None
    wait_s: float | None = None
    closed: bool = False


@dataclass
class Replay:
    """One matcher through the day, as a discrete-event simulation (simulated time; CPU time of
    each decision measured for real)."""

    day: Day
    decide: Decide
    window_s: float  # 0: decide at each arrival (greedy)
    progress: Callable[[], None]
    usage: Usage = field(init=False)
    cpu_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.providers = {p.id: p for p in self.day.providers}
        self.usage = Usage(self.providers, [])
        self.events: list[tuple[float, int, str, object]] = []
        self.seq = 0
        self.queued: dict[int, RequestInfo] = {}
        self.info: dict[int, RequestInfo] = {}
        self.out: dict[int, Outcome] = {}
        self.next_batch: float | None = None
        self.last_batch = -1e9
        self.now = 0.0

    def push(self, t: float, kind: str, payload: object) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, payload))

    def run(self) -> dict[int, Outcome]:
        for t, request in self.day.requests:
            self.push(t, "arrive", request)
        while self.events:
            t, _, kind, payload = heapq.heappop(self.events)
            self.now = t
            getattr(self, f"_on_{kind}")(t, payload)
        return self.out

    def _on_arrive(self, t: float, r: RequestInfo) -> None:
        self.info[r.id] = r
        self.out[r.id] = Outcome(created=t)
        self.push(t + SLA_S[r.priority], "deadline", r.id)
        self._queue(t, r)

    def _queue(self, t: float, r: RequestInfo) -> None:
        self.queued[r.id] = r
        # Greedy decides at once; an urgent request cuts the batch window short.
        at = t if self.window_s <= 0 or r.priority == "urgent" else max(t, self.last_batch + self.window_s)
        if self.next_batch is None or at < self.next_batch:
            self.next_batch = at
            self.push(at, "batch", at)

    def _on_batch(self, t: float, scheduled: float) -> None:
        if self.next_batch != scheduled:
            return  # superseded by an earlier run
        self.next_batch, self.last_batch = None, t
        batch, self.queued = list(self.queued.values()), {}
        started = time.process_time()
        decisions = self.decide(batch, self.usage, t)
        self.cpu_ms.append((time.process_time() - started) * 1000)
        for d in decisions:
            o = self.out[d.request_id]
            if d.reason == WAIT:  # full, but of units pending offers hold: stays queued
                self.queued[d.request_id] = self.info[d.request_id]
                continue
            if d.provider_id is None:
                self._close(d.request_id)
                continue
            o.offers += 1
            o.first_offer = t if o.first_offer is None else o.first_offer
            o.offered_at, o.open_offer = t, (d.provider_id, d.caregiver_id)
            answer = self.day.answer(d.request_id, d.provider_id)
            self.push(t + answer.delay_s, "answer", (d.request_id, d.provider_id, answer.accepts, o.offers))

    def _on_answer(self, t: float, payload: tuple[int, int, bool, int]) -> None:
        rid, pid, accepts, nth = payload
        o = self.out[rid]
        if o.closed or o.offers != nth or o.open_offer is None:
            return  # withdrawn when the request went in front of the operators
        r = self.info[rid]
        if accepts:
            self.usage.settle(self.providers[pid], r, accepted=True, caregiver_id=o.open_offer[1])
            o.served_km = _distance(r, self.providers[pid])
            o.wait_s = o.offered_at - o.created
            o.open_offer, o.closed = None, True
            self.progress()
            return
        self._release(r)
        self.info[rid] = replace(r, excluded=r.excluded | {pid})
        self._queue(t, self.info[rid])

    def _on_deadline(self, t: float, rid: int) -> None:
        if not self.out[rid].closed:
            self._close(rid)  # not placed in time: escalated

    def _close(self, rid: int) -> None:
        o = self.out[rid]
        if o.open_offer is not None:
            self._release(self.info[rid])
        self.queued.pop(rid, None)
        if not o.closed:
            o.closed = True
            self.progress()

    def _release(self, r: RequestInfo) -> None:
        o = self.out[r.id]
        assert o.open_offer is not None
        pid, cg = o.open_offer
        self.usage.settle(self.providers[pid], r, accepted=False, caregiver_id=cg)
        o.open_offer = None
        if self.queued and self.next_batch is None:  # freed capacity: the waiting may now be placed
            self._queue(self.now, next(iter(self.queued.values())))


def _distance(r: RequestInfo, p: ProviderInfo) -> float:
    return haversine_km(r.lat, r.lon, p.lat, p.lon)


@dataclass
class PlatformMatcher:
    """The platform's matcher as the worker runs it: the batch assignment with the default
    weights, and capacity prices recomputed every `refresh_s` from the forecast (the history
    days' requests still to come at this time of day, each weighing 1/days)."""

    day: Day
    weights: Weights
    forecast: list[tuple[float, RequestInfo]]
    days: int
    refresh_s: float
    prices: dict[tuple[int, CapacityKey], float] = field(default_factory=dict)
    next_refresh: float = -1e9
    price_ms: list[float] = field(default_factory=list)

    def __call__(self, batch: list[RequestInfo], usage: Usage, t: float) -> list[Decision]:
        if self.refresh_s > 0 and self.forecast and t >= self.next_refresh:
            remaining = aggregate([(r, 1 / self.days) for arrival, r in self.forecast if arrival > t])
            started = time.process_time()
            self.prices = capacity_prices(remaining, self.day.providers, usage, self.weights)
            self.price_ms.append((time.process_time() - started) * 1000)
            self.next_refresh = t + self.refresh_s
        return decide_batch(batch, self.day.providers, [], self.weights, self.prices, usage=usage)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summary(out: dict[int, Outcome], cpu_ms: list[float]) -> dict[str, object]:
    served = [o for o in out.values() if o.served_km is not None]
    km = [o.served_km for o in served if o.served_km is not None]
    waits = [o.wait_s for o in served if o.wait_s is not None]
    firsts = [o.first_offer - o.created for o in out.values() if o.first_offer is not None]
    return {
        "requests": len(out),
        "served": len(served),
        "served_share": round(len(served) / max(len(out), 1), 4),
        "travel_km_total": round(sum(km), 1),
        "travel_km_mean": round(statistics.mean(km), 3) if km else None,
        "travel_km_p95": pct(km, 0.95),
        "wait_s_mean": round(statistics.mean(waits), 2) if waits else None,
        "wait_s_p95": pct(waits, 0.95),
        "first_offer_wait_s_p95": pct(firsts, 0.95),
        "offers_per_request": round(sum(o.offers for o in out.values()) / max(len(out), 1), 3),
        "batches": len(cpu_ms),
        "cpu_ms_per_batch_mean": round(statistics.mean(cpu_ms), 3) if cpu_ms else None,
        "cpu_ms_per_batch_p95": pct(cpu_ms, 0.95),
        "cpu_ms_per_batch_max": round(max(cpu_ms), 3) if cpu_ms else None,
    }


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests in the day (default 3000)")
    parser.add_argument("--providers", type=int, default=400, help="providers in the district (default 400)")
    parser.add_argument("--seed", type=int, default=1, help="the day's seed (default 1)")
    parser.add_argument(
        "--window", type=float, default=1.0, help="the platform's batch window, s (default 1)"
    )
    parser.add_argument(
        "--scheduled", type=float, default=0.4, help="share filed by recurring plans at 06:00"
    )
    parser.add_argument("--capacity", type=float, default=1.0, help="capacity / demand, per kind (default 1)")
    parser.add_argument(
        "--history", type=int, default=7, help="days of history for the forecast (0: no prices)"
    )
    parser.add_argument("--price-every", type=float, default=1800, help="capacity prices refreshed every N s")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args()
    console = Console()
    wall = time.perf_counter()
    day = make_day(
        seed=args.seed,
        requests=args.requests,
        providers=args.providers,
        scheduled=args.scheduled,
        ratio=args.capacity,
    )
    weights = Weights()
    past = history(day, days=args.history, scheduled=args.scheduled) if args.history else []
    platform = PlatformMatcher(day, weights, past, args.history, args.price_every)
    matchers: dict[str, tuple[Decide, float]] = {
        "greedy": (
            lambda batch, usage, _t: decide_greedy(batch, day.providers, [], NEAREST, usage=usage),
            0.0,
        ),
        "platform": (platform, args.window),
    }
    results: dict[str, object] = {}
    served: dict[str, set[int]] = {}
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        for name, (decide, window) in matchers.items():
            task = progress.add_task(f"replaying the day: {name}", total=len(day.requests))
            replay = Replay(day, decide, window, lambda task=task: progress.advance(task))
            outcomes = replay.run()
            results[name] = summary(outcomes, replay.cpu_ms)
            served[name] = {rid for rid, o in outcomes.items() if o.served_km is not None}
        assert isinstance(results["platform"], dict)
        results["platform"]["price_refreshes"] = len(platform.price_ms)
        results["platform"]["price_cpu_ms_mean"] = (
            round(statistics.mean(platform.price_ms), 1) if platform.price_ms else None
        )
        task = progress.add_task("hindsight optimum (LP)", total=1)
        best = hindsight_optimum(day)
        results["optimum"] = None if best is None else _optimum_summary(len(day.requests), *best)
        # The least travel that would have served exactly what each matcher served.
        for name in matchers:
            same = hindsight_optimum(day, only=served[name])
            block = results[name]
            assert isinstance(block, dict)
            block["travel_km_optimum_same_served"] = None if same is None else round(sum(same[1]), 1)
        progress.advance(task)
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
        **results,
        "targets": _targets(results),
        "wall_s": round(time.perf_counter() - wall, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": py_platform.python_version(),
            "platform": py_platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _print(console, report)


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


def _print(console: Console, report: dict[str, object]) -> None:
    table = Table(
        title=f"Matching a Jinghai day: {report['requests']} requests, {report['providers']} providers, seed {report['seed']}"
    )
    keys = ("served", "travel_km_total", "travel_km_mean", "travel_km_p95", "wait_s_mean", "wait_s_p95",
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
    console.print(f"wrote {RESULTS} in {report['wall_s']} s")


if __name__ == "__main__":
    main()
