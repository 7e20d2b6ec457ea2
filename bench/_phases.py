"""The phases of bench/load.py and the figures each one yields."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _consoles import CLIENT_GC_THRESHOLD, FanoutConsoles, Observer, ws_url
from _http import Pool, Result, RunStats, closed_loop, open_loop, percentile
from _platform import Platform
from _workload import Workload
from rich.table import Table


@dataclass
class Phase:
    name: str
    rate: float
    duration: float
    stats: RunStats = field(default_factory=RunStats)
    scheduled: dict[int, float] = field(default_factory=dict)  # request id -> scheduled send time
    started: float = 0.0
    ended: float = 0.0
    accepts: dict[int, int] = field(default_factory=dict)  # HTTP status -> count
    # > 0: closed loop, this many clients posting back to back (the rate is then what the
    # platform takes, as for the ceiling); 0: open loop at `rate`.
    clients: int = 0
    drain: float = 5.0  # seconds to wait, after the load, for its requests to be served


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def drive(
    run: Any, platform: Platform, workload: Workload, observer: Observer, phase: Phase, accept_pool: Pool
) -> Phase:
    """Post at `phase.rate` (or with `phase.clients` back to back) for `phase.duration`; every
    offer is accepted by its provider."""
    pool = Pool("127.0.0.1", platform.port, phase.clients or run.args.connections)
    pending: set[asyncio.Task[None]] = set()

    async def accept(frame: dict[str, Any]) -> None:
        data = frame.get("data") or {}
        try:
            status, _ = await accept_pool.request(
                workload.accept(int(data["offer_id"]), int(data["provider_id"]))
            )
        except Exception:
            status = -1
        phase.accepts[status] = phase.accepts.get(status, 0) + 1

    def on_offer(frame: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(accept(frame))
        pending.add(task)
        task.add_done_callback(pending.discard)

    def on_result(_i: int, result: Result) -> None:
        if 200 <= result.status < 300:
            phase.scheduled[int(json.loads(result.body)["id"])] = result.scheduled

    def make(i: int) -> bytes:
        return workload.post_request(i, phase.name)

    observer.on_offer = on_offer
    phase.started = time.perf_counter()
    if phase.clients:
        task_id = run.progress.add_task(f"{phase.name} ({phase.clients} clients)", total=None)
        phase.stats = await closed_loop(
            pool, make, clients=phase.clients, duration=phase.duration, on_result=on_result,
            progress=lambda n: run.progress.update(task_id, completed=n),
        )  # fmt: skip
        run.progress.update(task_id, total=len(phase.stats.results), completed=len(phase.stats.results))
    else:
        task_id = run.progress.add_task(
            f"{phase.name} @ {phase.rate:g}/s", total=int(phase.rate * phase.duration)
        )
        phase.stats = await open_loop(
            pool, make, rate=phase.rate, duration=phase.duration, on_result=on_result,
            progress=lambda n: run.progress.update(task_id, completed=n),
        )  # fmt: skip
    phase.ended = time.perf_counter()
    deadline = time.perf_counter() + phase.drain
    while time.perf_counter() < deadline and any(
        rid not in observer.assigned and rid not in observer.escalated for rid in phase.scheduled
    ):
        await asyncio.sleep(0.05)
    if pending:
        await asyncio.wait(pending, timeout=10)
    pool.close()
    return phase


def intake_figures(phase: Phase) -> dict[str, Any]:
    ok = [r for r in phase.stats.results if 200 <= r.status < 300]
    lat = phase.stats.latencies_ms()
    span = (max(r.done for r in ok) - min(r.scheduled for r in ok)) if ok else 0.0
    statuses: dict[int, int] = {}
    for r in phase.stats.results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {
        "offered_rate": phase.rate,
        "rps": round(len(ok) / span, 1) if span else 0.0,
        "p50_ms": _ms(percentile(lat, 0.5)),
        "p99_ms": _ms(percentile(lat, 0.99)),
        "max_ms": _ms(max(lat) if lat else None),
        "statuses": statuses,
        "errors": phase.stats.errors,
        "dropped": phase.stats.dropped,
    }


def pipeline_figures(phase: Phase, observer: Observer) -> dict[str, Any]:
    offered = [(observer.offered[r] - t) * 1000 for r, t in phase.scheduled.items() if r in observer.offered]
    assigned = [
        (observer.assigned[r] - t) * 1000 for r, t in phase.scheduled.items() if r in observer.assigned
    ]
    cutoff = phase.ended + 2.0  # served within two seconds of the load's end counts as keeping up
    # Served: assigned to a provider, or (the few elders no provider's radius reaches) escalated
    # to an operator with the reason: either way the pipeline has decided it.
    never = float("inf")
    served = sum(
        1
        for r in phase.scheduled
        if min(observer.assigned.get(r, never), observer.escalated_at.get(r, never)) <= cutoff
    )
    reasons: dict[str, int] = {}
    for r in phase.scheduled:
        if r in observer.escalated:
            reasons[observer.escalated[r]] = reasons.get(observer.escalated[r], 0) + 1
    return {
        "requests": len(phase.scheduled),
        "offered": len(offered),
        "assigned": len(assigned),
        "escalated": reasons,
        "rps": round(served / phase.duration, 1),
        "offered_p50_ms": _ms(percentile(offered, 0.5)),
        "offered_p99_ms": _ms(percentile(offered, 0.99)),
        "assigned_p50_ms": _ms(percentile(assigned, 0.5)),
        "assigned_p99_ms": _ms(percentile(assigned, 0.99)),
        "accept_statuses": phase.accepts,
    }


async def fanout(
    run: Any, platform: Platform, workload: Workload, observer: Observer, accept_pool: Pool
) -> dict[str, Any]:
    """N consoles (and one that never reads) connected while requests flow."""
    since = max(observer.last_seq, 0)
    url = ws_url(platform.base, workload.operator_token, since)
    settled = run.args.client_gc == "settled"
    consoles = FanoutConsoles(
        [url] * run.args.consoles, stall_url=url, gc_threshold=CLIENT_GC_THRESHOLD if settled else 0
    )
    await asyncio.to_thread(consoles.start)
    phase = Phase("fan-out", run.args.fanout_rate, run.args.duration)
    started = time.time()
    await drive(run, platform, workload, observer, phase, accept_pool)
    report = await asyncio.to_thread(consoles.stop)
    frames = [c[0] for c in report["consoles"]]
    delays = [d for c in report["consoles"] for d in c[1]]
    firsts = [c[2] for c in report["consoles"] if c[2]]
    lasts = [c[3] for c in report["consoles"] if c[3]]
    span = (max(lasts) - min(firsts)) if firsts and lasts else 0.0
    return {
        "consoles": run.args.consoles,
        "events_per_console": statistics.median(frames) if frames else 0,
        "deliveries": sum(frames),
        "deliveries_per_s": round(sum(frames) / span, 1) if span else 0.0,
        "p50_ms": _ms(percentile(delays, 0.5)),
        "p99_ms": _ms(percentile(delays, 0.99)),
        "consoles_cut_off": sum(1 for c in report["consoles"] if c[4]),
        "stalled_console": report["stalled"],
        "wall_s": round(time.time() - started, 1),
    }


_BATCH = re.compile(r"matched (\d+) request\(s\).*\(([\d.]+) ms cpu\)")


def matching_cpu(platform: Platform) -> dict[str, Any]:
    log = (
        (platform.logs / "match.log").read_text(errors="replace")
        if (platform.logs / "match.log").exists()
        else ""
    )
    batches = [(int(n), float(ms)) for n, ms in _BATCH.findall(log)]
    sizes = [n for n, _ in batches]
    cpu = [ms for _, ms in batches]
    return {
        "batches": len(batches),
        "batch_size_p50": percentile([float(s) for s in sizes], 0.5),
        "batch_size_max": max(sizes) if sizes else None,
        "cpu_ms_per_batch_p50": _ms(percentile(cpu, 0.5)),
        "cpu_ms_per_batch_p99": _ms(percentile(cpu, 0.99)),
    }


def probe_readings(folder: Path | None, pid: int | None, since: float) -> list[dict[str, float]]:
    """The memory probe's readings of process `pid` from `since` on (bench/_probe)."""
    if folder is None or pid is None:
        return []
    try:
        lines = (folder / f"{pid}.jsonl").read_text().splitlines()
    except FileNotFoundError:  # the process never wrote a reading
        return []
    readings = [json.loads(line) for line in lines if line.strip()]
    return [{k: v for k, v in r.items() if k != "t"} for r in readings if r["t"] >= since]


def resources(platform: Platform, soak_from: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, usage in platform.usage().items():
        entry: dict[str, Any] = {"peak_rss_mb": round(usage.peak_rss_mb, 1), "cpu_s": round(usage.cpu_s, 1)}
        if soak_from is not None:
            warm = [rss for at, rss in usage.rss_samples if at >= soak_from]
            if len(warm) > 4:
                entry["soak_growth_mb"] = round(warm[-1] - warm[len(warm) // 5], 1)
                # The shape, not just the two ends: a step (a larger batch once) or a slope.
                entry["soak_rss_mb"] = [round(warm[(len(warm) - 1) * i // 10], 1) for i in range(11)]
            regions = [kinds for at, kinds in usage.regions if at >= soak_from and kinds]
            if len(regions) > 1:  # where the growth, if any, lives: first and last reading
                entry["soak_regions_mb"] = {"first": regions[0], "last": regions[-1]}
            probed = probe_readings(platform.probe_dir, usage.pid, soak_from)
            if len(probed) > 1:  # inside the heap: SQLite's memory and malloc's, first and last
                entry["soak_probe_mb"] = {"first": probed[0], "last": probed[-1]}
        out[name] = entry
    return out


def table(results: dict[str, Any]) -> Table:
    t = Table(title="eldercare load benchmark")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("target", justify="right")
    rows = [
        (
            "ceiling (bare route) req/s",
            f"{results.get('ceiling_rps')} ({' / '.join(str(c) for c in results.get('ceiling_runs_rps', []))})",
            "",
        ),
        ("intake req/s sustained", results.get("intake_rps"), ">= 1000"),
        (
            "intake p50 / p99 ms",
            f"{results.get('intake_p50_ms')} / {results.get('intake_p99_ms')}",
            "p99 < 50",
        ),
        ("intake capacity req/s (saturated)", results.get("intake_capacity_rps"), ""),
        ("intake capacity / ceiling", results.get("intake_to_ceiling"), ">= 0.4"),
        ("pipeline req/s", results.get("pipeline_rps"), ">= 500"),
        ("POST -> offered p99 ms", results.get("offered_p99_ms"), "< 250"),
        ("POST -> assigned p99 ms", results.get("assigned_p99_ms"), ""),
        ("naive pipeline req/s", results.get("naive_pipeline_rps"), ""),
        ("pipeline / naive", results.get("pipeline_to_naive"), ">= 5"),
        ("fan-out deliveries/s", results.get("fanout_deliveries_per_s"), ">= 50000"),
        ("fan-out p99 ms", results.get("fanout_p99_ms"), "< 50"),
        ("matching cpu ms/batch p99", results.get("matching", {}).get("cpu_ms_per_batch_p99"), ""),
        ("API peak MB", results.get("api_peak_mb"), "< 300"),
        ("worker peak MB", results.get("worker_peak_mb"), "< 300"),
    ]
    for name, value, target in rows:
        t.add_row(name, "-" if value is None else str(value), target)
    return t
