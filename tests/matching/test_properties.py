"""Property tests over random districts (hypothesis): whatever the providers, caregivers,
requests and capacity already in use, the batch matcher never breaks a hard constraint, never
gives more than is left (per pool and per caregiver), decides every request exactly once, says
why when it places nobody, and never leaves an urgent request unplaced while a lower-priority
one took a unit it could have had. The checks here are written out independently of the
matcher's own code."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.core.geo import haversine_km
from dispatch.matching.batch import decide_batch
from dispatch.matching.core import (
    REASONS,
    WAIT,
    CaregiverInfo,
    Holding,
    ProviderInfo,
    RequestInfo,
    capacity_key,
    holds,
    overlaps,
)
from dispatch.matching.scoring import ProviderRecord, Weights
from tests.matching.factories import HOME, KM_LAT, at

SKILLS = ("bathing", "cleaning", "nursing", "meal_delivery")
KIND_OF = {"meal": ("canteen", "home_care"), "day_care": ("day_care",), "home_care": ("home_care",)}
HOURS = (("00:00", "24:00"), ("07:00", "20:00"), ("10:00", "19:30"), ("07:30", "18:00"))


@st.composite
def caregivers(draw: st.DrawFn, base: int) -> tuple[CaregiverInfo, ...]:
    out = []
    for k in range(draw(st.integers(0, 3))):
        shift = draw(st.sampled_from([None, ("06:00", "14:00"), ("12:00", "22:00")]))
        out.append(
            CaregiverInfo(
                base * 10 + k,
                frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=3))),
                shift[0] if shift else None,
                shift[1] if shift else None,
                draw(st.integers(1, 2)),
            )
        )
    return tuple(out)


@st.composite
def providers(draw: st.DrawFn) -> list[ProviderInfo]:
    out = []
    for pid in range(1, draw(st.integers(1, 7)) + 1):
        kind = draw(st.sampled_from(["canteen", "day_care", "home_care"]))
        out.append(
            ProviderInfo(
                id=pid,
                kind=kind,
                lat=HOME[0] + draw(st.floats(-8, 8)) * KM_LAT,
                lon=HOME[1] + draw(st.floats(-8, 8)) * KM_LAT * 1.28,
                capacity=draw(st.integers(1, 4)),
                service_radius_km=draw(st.floats(2, 15)),
                skills=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=4))),
                open_time=(hours := draw(st.sampled_from(HOURS)))[0],
                close_time=hours[1],
                caregivers=draw(caregivers(pid)) if kind == "home_care" else (),
                record=ProviderRecord(
                    acceptance_rate=draw(st.floats(0.3, 1.0)), no_shows=draw(st.integers(0, 3))
                ),
            )
        )
    return out


@st.composite
def requests(draw: st.DrawFn, provider_ids: list[int]) -> list[RequestInfo]:
    out = []
    for rid in range(100, 100 + draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["meal", "day_care", "home_care"]))
        start = draw(st.sampled_from([3.0, 8.0, 11.0, 17.0, 21.0]))
        out.append(
            RequestInfo(
                id=rid,
                version=0,
                kind=kind,
                priority=draw(st.sampled_from(["normal", "normal", "high", "urgent"])),
                created_at=at(6) + timedelta(seconds=rid),
                lat=HOME[0] + draw(st.floats(-8, 8)) * KM_LAT,
                lon=HOME[1] + draw(st.floats(-8, 8)) * KM_LAT * 1.28,
                window_start=at(start),
                window_end=at(start + draw(st.sampled_from([1.5, 2.0, 9.0]))),
                slot=draw(st.sampled_from(["lunch", "dinner"])) if kind == "meal" else None,
                delivery=kind == "meal" and draw(st.booleans()),
                skills=frozenset(draw(st.sets(st.sampled_from(SKILLS[:3]), max_size=2)))
                if kind == "home_care"
                else frozenset(),
                excluded=frozenset(draw(st.sets(st.sampled_from(provider_ids), max_size=2))),
                refused=frozenset(draw(st.sets(st.sampled_from(provider_ids), max_size=1))),
            )
        )
    return out


@st.composite
def districts(draw: st.DrawFn) -> tuple[list[ProviderInfo], list[RequestInfo], list[Holding]]:
    ps = draw(providers())
    rs = draw(requests([p.id for p in ps]))
    holdings = []
    for _ in range(draw(st.integers(0, 6))):
        p = draw(st.sampled_from(ps))
        r = draw(st.sampled_from(rs))
        cg = draw(st.sampled_from([None, *[c.id for c in p.caregivers]]))
        holdings.append(
            Holding(
                p.id,
                cg,
                r.kind,
                r.window_start,
                r.slot,
                draw(st.sampled_from(["pending", "assigned", "completed"])),
            )
        )
    return ps, rs, holdings


def needed(r: RequestInfo) -> frozenset[str]:
    if r.kind == "meal":
        return frozenset({"meal_delivery"}) if r.delivery else frozenset()
    return r.skills


def feasible_ignoring_capacity(r: RequestInfo, p: ProviderInfo, caregiver_id: int | None = None) -> bool:
    kinds = KIND_OF[r.kind] if r.kind != "meal" or r.delivery else ("canteen",)
    if p.kind not in kinds or haversine_km(r.lat, r.lon, p.lat, p.lon) > p.service_radius_km:
        return False
    if p.id in r.refused or p.id in r.excluded:
        return False
    if not overlaps(p.open_time, p.close_time, r.window_start, r.window_end):
        return False
    if not p.caregivers:
        return needed(r) <= p.skills
    chosen = [c for c in p.caregivers if caregiver_id is None or c.id == caregiver_id]
    return any(
        needed(r) <= c.skills
        and (
            not (c.shift_start and c.shift_end)
            or overlaps(c.shift_start, c.shift_end, r.window_start, r.window_end)
        )
        for c in chosen
    )


@settings(max_examples=300, deadline=None)
@given(districts())
def test_no_hard_constraint_or_capacity_is_ever_broken(
    district: tuple[list[ProviderInfo], list[RequestInfo], list[Holding]],
) -> None:
    ps, rs, holdings = district
    by_id = {p.id: p for p in ps}
    decisions = decide_batch(rs, ps, holdings, Weights())
    assert sorted(d.request_id for d in decisions) == sorted(r.id for r in rs)
    request_of = {r.id: r for r in rs}
    pools: Counter[tuple[int, object]] = Counter()
    jobs: Counter[int] = Counter()
    for h in holdings:
        p = by_id[h.provider_id]
        if holds(p, h):
            pools[(p.id, capacity_key(p, h.request_kind, h.window_start, h.slot))] += 1
            if h.caregiver_id is not None and h.status in ("pending", "assigned", "in_service"):
                jobs[h.caregiver_id] += 1
    before = (Counter(pools), Counter(jobs))
    for d in decisions:
        r = request_of[d.request_id]
        if d.provider_id is None:
            assert d.reason in (*REASONS, WAIT)
            continue
        p = by_id[d.provider_id]
        assert feasible_ignoring_capacity(r, p, d.caregiver_id)
        assert (d.caregiver_id is None) == (not p.caregivers)
        pools[(p.id, capacity_key(p, r.kind, r.window_start, r.slot))] += 1
        if d.caregiver_id is not None:
            jobs[d.caregiver_id] += 1
    for (pid, key), n in pools.items():
        assert n <= max(by_id[pid].capacity, before[0][(pid, key)]), (pid, key)
    caps = {c.id: c.max_jobs for p in ps for c in p.caregivers}
    for cid, n in jobs.items():
        assert n <= max(caps[cid], before[1][cid])
    rank = {"urgent": 0, "high": 1, "normal": 2}
    for d in decisions:
        r = request_of[d.request_id]
        if d.provider_id is not None or d.reason not in ("all_full", WAIT):
            continue
        for other in decisions:  # nothing a more urgent request could use went to a less urgent one
            o = request_of[other.request_id]
            if other.provider_id is None or rank[o.priority] <= rank[r.priority]:
                continue
            p = by_id[other.provider_id]
            same_pool = capacity_key(p, r.kind, r.window_start, r.slot) == capacity_key(
                p, o.kind, o.window_start, o.slot
            )
            assert not (same_pool and p.caregivers == () and feasible_ignoring_capacity(r, p)), (r.id, o.id)
