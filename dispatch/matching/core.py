"""The matching core: pure functions over plain data, no I/O, so that the worker, the console's
candidate list and the benchmark run exactly the same decisions.

A request is served by providers of a kind (a delivered meal may fall through from a canteen
to a home-care provider with `meal_delivery`). Hard constraints are checked in this order, and
how far the best provider got names the escalation reason when none passes them all:

  1 kind and in range     (else no_provider_in_range)
  2 not refused by the elder (else all_refused)
  3 not declined / let expire for this request (else all_declined)
  4 open in the window    (else none_open)
  5 skilled: the provider, or one of its caregivers, has every skill asked (else no_skilled_provider)
  6 a skilled caregiver on shift in the window (else none_open)
  7 capacity left: the provider's, and the caregiver's jobs at once (else all_full)

Capacity counts accepted jobs and pending offers alike: an offer holds its unit until it ends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dispatch.core.clock import local
from dispatch.core.geo import haversine_km
from dispatch.matching.scoring import NEAREST, ProviderRecord, Weights, pair_parts, total

HOLDING_STATUSES_DAILY = frozenset({"assigned", "in_service", "completed"})
HOLDING_STATUSES_OPEN = frozenset({"assigned", "in_service"})
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2}
DEFAULT_CAREGIVER_MAX_JOBS = 3

# Checks passed (see the module docstring); a feasible pair passes all of them.
FEASIBLE = 7
WAIT = "waiting_for_capacity"  # not an escalation: the request stays queued
REASONS = (
    "no_provider_in_range",
    "all_refused",
    "all_declined",
    "none_open",
    "no_skilled_provider",
    "none_open",
    "all_full",
)


@dataclass(frozen=True)
class CaregiverInfo:
    id: int
    skills: frozenset[str]
    shift_start: str | None = None
    shift_end: str | None = None
    max_jobs: int = DEFAULT_CAREGIVER_MAX_JOBS


@dataclass(frozen=True)
class ProviderInfo:
    id: int
    kind: str
    lat: float
    lon: float
    capacity: int
    service_radius_km: float
    skills: frozenset[str] = frozenset()
    open_time: str = "00:00"
    close_time: str = "24:00"
    caregivers: tuple[CaregiverInfo, ...] = ()
    record: ProviderRecord = ProviderRecord()


@dataclass(frozen=True)
class RequestInfo:
    id: int
    version: int
    kind: str
    priority: str
    created_at: datetime
    lat: float
    lon: float
    window_start: datetime
    window_end: datetime
    slot: str | None = None
    delivery: bool = False
    skills: frozenset[str] = frozenset()
    # Providers that declined this request or let its offer expire.
    excluded: frozenset[int] = frozenset()
    elder_id: int = 0
    # Providers the elder refused (dispatch/matching/refusals.py).
    refused: frozenset[int] = frozenset()
    # Providers and caregivers that served this elder before (continuity).
    served_by: frozenset[int] = frozenset()
    served_by_caregivers: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Holding:
    """One unit of a provider's capacity in use: an assigned job or a pending offer."""

    provider_id: int
    caregiver_id: int | None
    request_kind: str
    window_start: datetime
    slot: str | None
    status: str
    # How many alike holdings this one stands for (the database counts them: capacity.py).
    count: int = 1


@dataclass(frozen=True)
class Decision:
    request_id: int
    version: int
    provider_id: int | None
    caregiver_id: int | None = None
    distance_km: float | None = None
    score: float | None = None
    score_parts: dict[str, float] = field(default_factory=dict)
    reason: str | None = None


CapacityKey = tuple[object, ...]
# What one more unit of a provider's pool is expected to be worth to later requests
# (dispatch/matching/prices.py), by (provider id, capacity key).
Prices = Mapping[tuple[int, CapacityKey], float]


def provider_kinds_for(request: RequestInfo) -> tuple[str, ...]:
    """Provider kinds that can serve a request, preferred first."""
    if request.kind == "meal":
        return ("canteen", "home_care") if request.delivery else ("canteen",)
    if request.kind == "day_care":
        return ("day_care",)
    return ("home_care",)


def required_skills(request: RequestInfo, provider: ProviderInfo | None = None) -> frozenset[str]:
    """What whoever serves must be able to do (the same for every provider of a request)."""
    if request.kind == "meal":
        return frozenset({"meal_delivery"}) if request.delivery else frozenset()
    return request.skills


def capacity_keys(window_start: datetime, slot: str | None) -> dict[str, CapacityKey]:
    """What one unit of capacity is, by provider kind: seats per day (day care), meals per slot
    (canteens), jobs at once (home care)."""
    day = local(window_start).date()
    return {"day_care": ("day", day), "canteen": ("slot", day, slot or "lunch"), "home_care": ("open",)}


def capacity_key(
    provider: ProviderInfo, request_kind: str, window_start: datetime, slot: str | None
) -> CapacityKey:
    return capacity_keys(window_start, slot).get(provider.kind, ("open",))


def holds(provider: ProviderInfo, holding: Holding) -> bool:
    """Whether a holding still takes capacity: daily kinds count the whole day, home care open jobs."""
    if holding.status == "pending":
        return True
    statuses = HOLDING_STATUSES_OPEN if provider.kind == "home_care" else HOLDING_STATUSES_DAILY
    return holding.status in statuses


class Usage:
    """Capacity used per provider and capacity key (and how much of it pending offers merely
    hold), and open jobs (and offers) per caregiver. Taking a unit makes an offer: it is held."""

    def __init__(self, providers: Mapping[int, ProviderInfo], holdings: Iterable[Holding]) -> None:
        self.providers = providers
        self.used: dict[tuple[int, CapacityKey], int] = defaultdict(int)
        self.held: dict[tuple[int, CapacityKey], int] = defaultdict(int)
        self.caregiver_jobs: dict[int, int] = defaultdict(int)
        for h in holdings:
            provider = providers.get(h.provider_id)
            if provider is None or not holds(provider, h):
                continue
            key = (h.provider_id, capacity_key(provider, h.request_kind, h.window_start, h.slot))
            self.used[key] += h.count
            if h.status == "pending":
                self.held[key] += h.count
            if h.caregiver_id is not None and h.status in HOLDING_STATUSES_OPEN | {"pending"}:
                self.caregiver_jobs[h.caregiver_id] += h.count

    def take_unit(self, provider_id: int, key: CapacityKey, caregiver_id: int | None) -> None:
        """Take one unit of a pool whose key the caller already knows (the batch does)."""
        self.used[(provider_id, key)] += 1
        self.held[(provider_id, key)] += 1
        if caregiver_id is not None:
            self.caregiver_jobs[caregiver_id] += 1

    def key_for(self, provider: ProviderInfo, request: RequestInfo) -> tuple[int, CapacityKey]:
        return (provider.id, capacity_key(provider, request.kind, request.window_start, request.slot))

    def used_for(self, provider: ProviderInfo, request: RequestInfo) -> int:
        return self.used[self.key_for(provider, request)]

    def left(self, provider: ProviderInfo, request: RequestInfo) -> int:
        return provider.capacity - self.used_for(provider, request)

    def take(self, provider: ProviderInfo, request: RequestInfo, caregiver_id: int | None) -> None:
        self.take_unit(provider.id, self.key_for(provider, request)[1], caregiver_id)

    def settle(
        self, provider: ProviderInfo, request: RequestInfo, *, accepted: bool, caregiver_id: int | None
    ) -> None:
        """An offer ended: accepted (the unit stays taken, no longer merely held) or not (freed)."""
        key = self.key_for(provider, request)
        self.held[key] -= 1
        if not accepted:
            self.used[key] -= 1
            if caregiver_id is not None:
                self.caregiver_jobs[caregiver_id] -= 1


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def window_minutes(start: datetime, end: datetime) -> tuple[float, float]:
    """The window in minutes from local midnight of its first day (the end may pass 24:00)."""
    start_l = local(start)
    first = start_l.hour * 60 + start_l.minute + start_l.second / 60
    return first, first + (end - start).total_seconds() / 60


def overlaps(open_time: str, close_time: str, start: datetime, end: datetime) -> bool:
    """Whether [start, end) (local time) overlaps the daily hours open..close of its first day."""
    s, e = window_minutes(start, end)
    return max(s, minutes(open_time)) < min(e, minutes(close_time))


def is_open(provider: ProviderInfo, request: RequestInfo) -> bool:
    return overlaps(provider.open_time, provider.close_time, request.window_start, request.window_end)


def caregiver_stage(provider: ProviderInfo, request: RequestInfo, usage: Usage) -> tuple[int, int | None]:
    """(checks passed up to and including the caregiver's load, the caregiver chosen).

    The caregiver chosen: skilled, on shift, with jobs to spare; the one who served this elder
    before if there is one, else the least busy."""
    needed = required_skills(request, provider)
    if not provider.caregivers:
        return (6 if needed <= provider.skills else 4), None
    stage, best = 4, None
    best_key: tuple[int, int, int] | None = None
    for cg in provider.caregivers:
        if not needed <= cg.skills:
            continue
        stage = max(stage, 5)
        if (
            cg.shift_start
            and cg.shift_end
            and not overlaps(cg.shift_start, cg.shift_end, request.window_start, request.window_end)
        ):
            continue
        stage = 6
        load = usage.caregiver_jobs[cg.id]
        if load >= cg.max_jobs:
            continue
        key = (0 if cg.id in request.served_by_caregivers else 1, load, cg.id)
        if best_key is None or key < best_key:
            best_key, best = key, cg.id
    return (7 if best is not None else stage), best


def pick_caregiver(provider: ProviderInfo, request: RequestInfo, usage: Usage) -> tuple[bool, int | None]:
    """(feasible, caregiver) as far as caregivers go: skills, shift and each one's load."""
    stage, caregiver = caregiver_stage(provider, request, usage)
    return stage >= 6 and (caregiver is not None or not provider.caregivers), caregiver


def pair_stage(
    provider: ProviderInfo, request: RequestInfo, usage: Usage, distance_km: float
) -> tuple[int, int | None]:
    """How many hard constraints a pair passes (FEASIBLE: all), and the caregiver chosen."""
    if provider.kind not in provider_kinds_for(request) or distance_km > provider.service_radius_km:
        return 0, None
    if provider.id in request.refused:
        return 1, None
    if provider.id in request.excluded:
        return 2, None
    if not is_open(provider, request):
        return 3, None
    stage, caregiver = caregiver_stage(provider, request, usage)
    if stage < 6 or (provider.caregivers and caregiver is None):
        return stage, None
    return (FEASIBLE if usage.left(provider, request) > 0 else 6), caregiver


def reason_for(best_stage: int, held: bool = False) -> str:
    """The escalation reason for the furthest stage any provider reached; WAIT when all are full
    but some of that capacity is only held by pending offers (it may come free within the
    offer deadline: the request stays queued rather than going to an operator at once; the
    "not placed in time" deadline still holds)."""
    if best_stage == FEASIBLE - 1 and held:
        return WAIT
    return REASONS[min(best_stage, FEASIBLE - 1)]


@dataclass
class Candidate:
    provider: ProviderInfo
    caregiver_id: int | None
    distance_km: float
    score: float
    parts: dict[str, float]


def score_pair(
    request: RequestInfo,
    provider: ProviderInfo,
    distance_km: float,
    caregiver_id: int | None,
    used_after: int,
    weights: Weights,
    price: float = 0.0,
    record_cached: dict[str, float] | None = None,
) -> tuple[float, dict[str, float]]:
    """The score of a feasible pair and its parts (see scoring.py)."""
    parts = pair_parts(
        weights=weights,
        distance_km=distance_km,
        fallback=provider.kind != provider_kinds_for(request)[0],
        record=provider.record,
        used_after=used_after,
        capacity=provider.capacity,
        continuity=provider.id in request.served_by or caregiver_id in request.served_by_caregivers,
        price=price,
        record_cached=record_cached,
    )
    return total(parts), parts


def candidates(
    request: RequestInfo,
    providers: Sequence[ProviderInfo],
    usage: Usage,
    weights: Weights = NEAREST,
    prices: Prices | None = None,
) -> tuple[list[Candidate], str | None]:
    """Feasible providers for a request, best first, or none and the reason why."""
    best_stage, held = 0, False
    found: list[Candidate] = []
    for p in providers:
        distance = haversine_km(request.lat, request.lon, p.lat, p.lon)
        stage, caregiver = pair_stage(p, request, usage, distance)
        best_stage = max(best_stage, stage)
        if stage == FEASIBLE - 1:
            held = held or usage.held[usage.key_for(p, request)] > 0
        if stage < FEASIBLE:
            continue
        price = (
            prices.get((p.id, capacity_key(p, request.kind, request.window_start, request.slot)), 0.0)
            if prices
            else 0.0
        )
        used_after = usage.used_for(p, request) + 1
        score, parts = score_pair(request, p, distance, caregiver, used_after, weights, price)
        found.append(Candidate(p, caregiver, distance, score, parts))
    if not found:
        return [], reason_for(best_stage, held)
    found.sort(key=lambda c: (c.score, c.provider.id))
    return found, None


def order_for_matching(requests: Iterable[RequestInfo]) -> list[RequestInfo]:
    """Urgent first, then high, then normal; oldest first within a priority."""
    return sorted(requests, key=lambda r: (PRIORITY_RANK.get(r.priority, 3), r.created_at, r.id))


def decision_for(request: RequestInfo, best: Candidate) -> Decision:
    return Decision(
        request.id,
        request.version,
        best.provider.id,
        best.caregiver_id,
        round(best.distance_km, 3),
        round(best.score, 3),
        best.parts,
    )


def decide_greedy(
    requests: Sequence[RequestInfo],
    providers: Sequence[ProviderInfo],
    holdings: Iterable[Holding],
    weights: Weights = NEAREST,
    *,
    usage: Usage | None = None,
) -> list[Decision]:
    """The baseline: each request in priority order (then arrival) takes its nearest feasible
    provider, one by one. `usage`: capacity in use to decide on instead of `holdings` (taken
    from as decisions are made, as a caller replaying a day keeps it)."""
    usage = usage if usage is not None else Usage({p.id: p for p in providers}, holdings)
    decisions: list[Decision] = []
    for request in order_for_matching(requests):
        found, reason = candidates(request, providers, usage, weights)
        if not found:
            decisions.append(Decision(request.id, request.version, None, reason=reason))
            continue
        best = found[0]
        usage.take(best.provider, request, best.caregiver_id)
        decisions.append(decision_for(request, best))
    return decisions
