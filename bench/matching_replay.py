"""The replay of one day through one matcher, for bench/matching.py: a discrete-event
simulation in simulated time (arrivals, batch runs, providers' answers after their delays,
"not placed in time" deadlines), with each decision's CPU time measured for real."""

from __future__ import annotations

import heapq
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from matching_day import Day

from dispatch.core.geo import haversine_km
from dispatch.matching.batch import decide_batch
from dispatch.matching.core import WAIT, CapacityKey, Decision, ProviderInfo, RequestInfo, Usage
from dispatch.matching.prices import aggregate, capacity_prices
from dispatch.matching.scoring import Weights

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
