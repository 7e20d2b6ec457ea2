"""The matching core: pure functions over plain data, no I/O, so that the worker and the
benchmarks run exactly the same decisions.

A request is served by providers of a kind (a delivered meal may fall through from a canteen
to a home-care provider with `meal_delivery`). Hard constraints filter candidates, in this
order, and the first stage that leaves none names the escalation reason: in range, not
excluded (declined or refused before), open in the window, skilled, with capacity left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

from dispatch.core.clock import local
from dispatch.core.geo import haversine_km

HOLDING_STATUSES_DAILY = frozenset({"assigned", "in_service", "completed"})
HOLDING_STATUSES_OPEN = frozenset({"assigned", "in_service"})
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2}
# A delivered meal from a home-care provider instead of a canteen costs this much extra score.
FALLBACK_PENALTY_KM = 2.0


@dataclass(frozen=True)
class CaregiverInfo:
    id: int
    skills: frozenset[str]
    shift_start: str | None = None
    shift_end: str | None = None


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
    excluded: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Holding:
    """One unit of a provider's capacity in use: an assigned job or a pending offer."""

    provider_id: int
    caregiver_id: int | None
    request_kind: str
    window_start: datetime
    slot: str | None
    status: str


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


def provider_kinds_for(request: RequestInfo) -> tuple[str, ...]:
    """Provider kinds that can serve a request, preferred first."""
    if request.kind == "meal":
        return ("canteen", "home_care") if request.delivery else ("canteen",)
    if request.kind == "day_care":
        return ("day_care",)
    return ("home_care",)


def required_skills(request: RequestInfo, provider: ProviderInfo) -> frozenset[str]:
    if request.kind == "meal":
        return frozenset({"meal_delivery"}) if request.delivery else frozenset()
    return request.skills


def capacity_key(
    provider: ProviderInfo, request_kind: str, window_start: datetime, slot: str | None
) -> CapacityKey:
    """What one unit of capacity is: seats per day, meals per slot, or jobs at once."""
    day = local(window_start).date()
    if provider.kind == "day_care":
        return ("day", day)
    if provider.kind == "canteen":
        return ("slot", day, slot or "lunch")
    return ("open",)


def holds(provider: ProviderInfo, holding: Holding) -> bool:
    """Whether a holding still takes capacity: daily kinds count the whole day, home care open jobs."""
    if holding.status == "pending":
        return True
    statuses = HOLDING_STATUSES_OPEN if provider.kind == "home_care" else HOLDING_STATUSES_DAILY
    return holding.status in statuses


class Usage:
    """Capacity used per provider and capacity key, and open jobs per caregiver."""

    def __init__(self, providers: dict[int, ProviderInfo], holdings: Iterable[Holding]) -> None:
        self.providers = providers
        self.used: dict[tuple[int, CapacityKey], int] = defaultdict(int)
        self.caregiver_jobs: dict[int, int] = defaultdict(int)
        for h in holdings:
            provider = providers.get(h.provider_id)
            if provider is None or not holds(provider, h):
                continue
            self.used[(h.provider_id, capacity_key(provider, h.request_kind, h.window_start, h.slot))] += 1
            if h.caregiver_id is not None and h.status in HOLDING_STATUSES_OPEN | {"pending"}:
                self.caregiver_jobs[h.caregiver_id] += 1

    def left(self, provider: ProviderInfo, request: RequestInfo) -> int:
        key = capacity_key(provider, request.kind, request.window_start, request.slot)
        return provider.capacity - self.used[(provider.id, key)]

    def take(self, provider: ProviderInfo, request: RequestInfo, caregiver_id: int | None) -> None:
        key = capacity_key(provider, request.kind, request.window_start, request.slot)
        self.used[(provider.id, key)] += 1
        if caregiver_id is not None:
            self.caregiver_jobs[caregiver_id] += 1


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _overlaps(open_time: str, close_time: str, start: datetime, end: datetime) -> bool:
    """Whether [start, end) (local time) overlaps the daily hours open..close."""
    start_l, end_l = local(start), local(end)
    day: date = start_l.date()
    open_at = datetime.combine(day, time(0), tzinfo=start_l.tzinfo).timestamp() + _minutes(open_time) * 60
    close_at = datetime.combine(day, time(0), tzinfo=start_l.tzinfo).timestamp() + _minutes(close_time) * 60
    return max(start_l.timestamp(), open_at) < min(end_l.timestamp(), close_at)


def is_open(provider: ProviderInfo, request: RequestInfo) -> bool:
    return _overlaps(provider.open_time, provider.close_time, request.window_start, request.window_end)


def pick_caregiver(provider: ProviderInfo, request: RequestInfo, usage: Usage) -> tuple[bool, int | None]:
    """(feasible, caregiver): the least busy caregiver on shift with the skills, if the provider has any."""
    needed = required_skills(request, provider)
    if not provider.caregivers:
        return needed <= provider.skills, None
    best: tuple[int, int] | None = None
    for cg in provider.caregivers:
        if not needed <= cg.skills:
            continue
        if (
            cg.shift_start
            and cg.shift_end
            and not _overlaps(cg.shift_start, cg.shift_end, request.window_start, request.window_end)
        ):
            continue
        load = usage.caregiver_jobs[cg.id]
        if best is None or (load, cg.id) < best:
            best = (load, cg.id)
    return (best is not None), (best[1] if best else None)


@dataclass
class Candidate:
    provider: ProviderInfo
    caregiver_id: int | None
    distance_km: float
    score: float
    parts: dict[str, float]


def candidates(
    request: RequestInfo, providers: Sequence[ProviderInfo], usage: Usage
) -> tuple[list[Candidate], str | None]:
    """Feasible providers for a request, best first, or none and the reason why."""
    kinds = provider_kinds_for(request)
    in_range: list[tuple[ProviderInfo, float]] = []
    for p in providers:
        if p.kind not in kinds:
            continue
        distance = haversine_km(request.lat, request.lon, p.lat, p.lon)
        if distance <= p.service_radius_km:
            in_range.append((p, distance))
    if not in_range:
        return [], "no_provider_in_range"
    remaining = [(p, d) for p, d in in_range if p.id not in request.excluded]
    if not remaining:
        return [], "all_declined"
    remaining = [(p, d) for p, d in remaining if is_open(p, request)]
    if not remaining:
        return [], "none_open"
    skilled: list[tuple[ProviderInfo, float, int | None]] = []
    for p, d in remaining:
        ok, caregiver = pick_caregiver(p, request, usage)
        if ok:
            skilled.append((p, d, caregiver))
    if not skilled:
        return [], "no_skilled_provider"
    found = [
        Candidate(p, cg, d, *_score(request, p, d)) for p, d, cg in skilled if usage.left(p, request) > 0
    ]
    if not found:
        return [], "all_full"
    found.sort(key=lambda c: (c.score, c.provider.id))
    return found, None


def _score(
    request: RequestInfo, provider: ProviderInfo, distance_km: float
) -> tuple[float, dict[str, float]]:
    kinds = provider_kinds_for(request)
    fallback = FALLBACK_PENALTY_KM if provider.kind != kinds[0] else 0.0
    parts = {"distance_km": round(distance_km, 3), "fallback_km": fallback}
    return distance_km + fallback, parts


def order_for_matching(requests: Iterable[RequestInfo]) -> list[RequestInfo]:
    """Urgent first, then high, then normal; oldest first within a priority."""
    return sorted(requests, key=lambda r: (PRIORITY_RANK.get(r.priority, 3), r.created_at, r.id))


def decide_greedy(
    requests: Sequence[RequestInfo], providers: Sequence[ProviderInfo], holdings: Iterable[Holding]
) -> list[Decision]:
    """Each request in priority order takes its best feasible provider."""
    usage = Usage({p.id: p for p in providers}, holdings)
    decisions: list[Decision] = []
    for request in order_for_matching(requests):
        found, reason = candidates(request, providers, usage)
        if not found:
            decisions.append(Decision(request.id, request.version, None, reason=reason))
            continue
        best = found[0]
        usage.take(best.provider, request, best.caregiver_id)
        decisions.append(
            Decision(
                request.id,
                request.version,
                best.provider.id,
                best.caregiver_id,
                round(best.distance_km, 3),
                round(best.score, 3),
                best.parts,
            )
        )
    return decisions
