"""A realistic Jinghai day for the matching benchmark (bench/matching.py), from a seed:

- the district: the demo district's providers (dispatch/demo/seed.py: 324 day-care centers,
  36 canteens, 24 home-care providers with caregivers), sampled or extended to `providers`;
- requests from the demo district's elders, by kind (meals 55 %, day care 25 %, home care 15 %,
  visits 3 %, emergencies 2 %) and over the day: a share (`scheduled`, default 40 %) filed at
  06:00 by the recurring plans' run, the rest as people call — meal orders peaking at 09:30 for
  lunch (and 15:30 for dinner), day care at 07:30, home care through the working day;
- capacities scaled so that the day's demand meets them (per kind: lunch meals against
  canteen places per slot, day-care requests against seats, home-care work against jobs);
- each provider's behaviour: an acceptance rate (70-98 %), and for every (request, provider)
  pair one drawn answer — accept, decline or silence — with its delay, the same for every
  matcher, so that they are compared on the very same day.

Capacity is not released within the replayed day (a unit is held from its offer's acceptance
to the end of the day), which keeps the hindsight optimum one exact assignment.
"""

from __future__ import annotations

import math
import random
import time as time_module
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import linprog

from dispatch.core.clock import LOCAL_TZ
from dispatch.demo.seed import SEED, caregiver_specs, elder_spec, provider_specs
from dispatch.elders.models import Elder
from dispatch.matching.arrays import Providers, Requests, Round, evaluate
from dispatch.matching.core import (
    FEASIBLE,
    CaregiverInfo,
    ProviderInfo,
    RequestInfo,
    Usage,
    overlaps,
    required_skills,
)
from dispatch.matching.scoring import NEAREST, ProviderRecord

DAY = date(2026, 3, 2)  # a Monday
KINDS = (("meal", 55), ("day_care", 25), ("home_care", 15), ("visit", 3), ("emergency", 2))
OFFER_TTL_S = 90.0


@dataclass(frozen=True)
class Answer:
    accepts: bool
    delay_s: float  # OFFER_TTL_S: no answer, the offer expires


@dataclass
class Day:
    providers: list[ProviderInfo]
    requests: list[tuple[float, RequestInfo]]  # (arrival, seconds after local midnight), by arrival
    acceptance: dict[int, float]
    seed: int

    def answer(self, request_id: int, provider_id: int) -> Answer:
        """The provider's answer to an offer of this request: drawn once, the same every time."""
        rng = random.Random(f"{self.seed}:{request_id}:{provider_id}")
        u = rng.random()
        a = self.acceptance[provider_id]
        if u < a:
            return Answer(True, min(rng.expovariate(1 / 20), OFFER_TTL_S - 1))
        if u < a + (1 - a) * 0.3:
            return Answer(False, OFFER_TTL_S)
        return Answer(False, min(rng.expovariate(1 / 30), OFFER_TTL_S - 1))


def at(seconds: float) -> datetime:
    return datetime.combine(DAY, time(0), LOCAL_TZ) + timedelta(seconds=seconds)


def _district(rng: random.Random, n: int) -> list[ProviderInfo]:
    specs = list(provider_specs(random.Random(SEED)))
    if n <= len(specs):
        specs = sorted(rng.sample(specs, n), key=specs.index)
    else:
        specs += rng.sample(list(provider_specs(random.Random(SEED + 7))), n - len(specs))
    out = []
    for i, p in enumerate(specs, 1):
        p.id = i
        caregivers: tuple[CaregiverInfo, ...] = ()
        if p.kind == "home_care":
            caregivers = tuple(
                CaregiverInfo(i * 100 + j, frozenset(c.skills), c.shift_start, c.shift_end)
                for j, c in enumerate(caregiver_specs(random.Random(SEED + i), p))
            )
        out.append(
            ProviderInfo(
                i,
                p.kind,
                p.lat,
                p.lon,
                p.capacity,
                p.service_radius_km,
                frozenset(p.skills),
                p.open_time,
                p.close_time,
                caregivers,
            )  # fmt: skip
        )
    return out


def _arrival(rng: random.Random, kind: str, slot: str | None) -> float:
    def clipped(mean_h: float, sd_h: float, lo_h: float, hi_h: float) -> float:
        return min(max(rng.gauss(mean_h, sd_h), lo_h), hi_h) * 3600

    if kind == "meal":
        return clipped(9.5, 1.0, 6.5, 10.75) if slot == "lunch" else clipped(15.5, 1.0, 12.0, 16.75)
    if kind == "day_care":
        return clipped(7.5, 0.5, 6.0, 9.0)
    if kind == "emergency":
        return rng.uniform(0, 24 * 3600)
    return rng.uniform(7 * 3600, 17.5 * 3600)


def _request(rng: random.Random, rid: int, elder: Elder, scheduled: bool) -> tuple[float, RequestInfo]:
    care = elder.care_level
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    if scheduled and kind in ("visit", "emergency"):
        kind = "home_care"
    slot = ("lunch" if rng.random() < 0.7 else "dinner") if kind == "meal" else None
    t = 6 * 3600 + rid * 0.001 if scheduled else _arrival(rng, kind, slot)
    if kind == "meal":
        start, end = (at(11 * 3600), at(12.5 * 3600)) if slot == "lunch" else (at(17 * 3600), at(18.5 * 3600))
    elif kind == "day_care":
        start, end = at(8 * 3600), at(17 * 3600)
    elif kind == "emergency":
        start, end = at(t), at(t + 1800)
    else:
        start, end = at(t + 900), at(t + 900 + 7200)
    skills: frozenset[str] = frozenset()
    if kind == "home_care":
        options = {
            "self_care": [["cleaning"]],
            "partial": [["bathing"], ["cleaning"]],
            "full": [["bathing", "nursing"]],
        }
        skills = frozenset(rng.choice(options[care]))
    priority = "urgent" if kind == "emergency" else rng.choices(["normal", "high", "urgent"], [85, 12, 3])[0]
    if scheduled:
        priority = "normal"
    delivery = kind == "meal" and (care != "self_care" or rng.random() < 0.15)
    info = RequestInfo(
        id=rid, version=0, kind=kind, priority=priority, created_at=at(t),
        lat=elder.lat, lon=elder.lon, window_start=start, window_end=end,
        slot=slot, delivery=delivery, skills=skills, elder_id=rid,
    )  # fmt: skip
    return t, info


def _scale(providers: list[ProviderInfo], requests: list[RequestInfo], ratio: float) -> list[ProviderInfo]:
    """Capacities scaled so that the day's demand meets them, kind by kind."""
    demand = {
        "canteen": sum(1 for r in requests if r.kind == "meal" and r.slot == "lunch"),
        "day_care": sum(1 for r in requests if r.kind == "day_care"),
        "home_care": sum(1 for r in requests if r.kind in ("home_care", "visit", "emergency")),
    }
    out = []
    for kind, wanted in demand.items():
        mine = [p for p in providers if p.kind == kind]
        base = sum(p.capacity for p in mine) or 1
        for p in mine:
            cap = max(1, round(p.capacity * wanted * ratio / base))
            # Nothing is released within the replayed day, so a caregiver's "jobs at once" are
            # the day's jobs: enough of them that the provider's capacity is what binds.
            per_cg = math.ceil(cap / len(p.caregivers)) + 1 if p.caregivers else 0
            caregivers = tuple(replace(c, max_jobs=per_cg) for c in p.caregivers)
            out.append(replace(p, capacity=cap, caregivers=caregivers))
    return sorted(out, key=lambda p: p.id)


def _requests(seed: int, n: int, scheduled: float, first_id: int = 1) -> list[tuple[float, RequestInfo]]:
    rng = random.Random(seed)
    elder_rng = random.Random(SEED + 1)
    elders = [elder_spec(elder_rng, i) for i in range(1, max(2000, n // 2) + 1)]
    reqs = [
        _request(rng, i, rng.choice(elders), rng.random() < scheduled) for i in range(first_id, first_id + n)
    ]
    return sorted(reqs, key=lambda pair: (pair[0], pair[1].id))


def make_day(*, seed: int, requests: int, providers: int, scheduled: float, ratio: float = 1.0) -> Day:
    """The day of `seed` on the district of `providers` (the district and its providers'
    behaviour do not depend on the seed: history days and the replayed day share them)."""
    rng = random.Random(f"district:{providers}")
    district = _district(rng, providers)
    acceptance = {p.id: rng.uniform(0.7, 0.98) for p in district}
    reqs = _requests(seed, requests, scheduled)
    district = [
        replace(p, record=ProviderRecord(acceptance_rate=acceptance[p.id]))
        for p in _scale(district, [r for _, r in reqs], ratio)
    ]
    return Day(district, reqs, acceptance, seed)


def history(day: Day, *, days: int, scheduled: float) -> list[tuple[float, RequestInfo]]:
    """`days` earlier days of the same district (other seeds of the same generator): what the
    platform knows of the past, never the replayed day itself."""
    n = len(day.requests)
    out: list[tuple[float, RequestInfo]] = []
    for k in range(days):
        out += _requests(day.seed * 1000 + 17 + k, n, scheduled, first_id=10_000_000 * (k + 1))
    return sorted(out, key=lambda pair: pair[0])


def hindsight_optimum(
    day: Day, *, only: set[int] | None = None, max_pairs: int = 3_000_000
) -> tuple[int, list[float], float] | None:
    """One min-cost assignment over the whole day, knowing every answer in advance: as many
    requests served as possible, then the least travel, within every capacity (pools and
    caregivers). An LP over the feasible pairs that would accept; its constraint matrix is
    totally unimodular (two laminar families), so HiGHS' vertex is an integral assignment.
    `only`: the requests to serve (the ones another matcher served: its least travel for them).
    Returns (served, travel per served request, solve seconds) or None when too large."""
    requests = [r for _, r in day.requests if only is None or r.id in only]
    bits: dict[str, int] = {}
    prov = Providers(day.providers, NEAREST, bits)
    req = Requests(requests, prov, bits)
    rnd = evaluate(
        req, np.arange(len(requests)), prov, Usage({p.id: p for p in day.providers}, []), NEAREST, None
    )
    rows, cols = np.nonzero(rnd.stage == FEASIBLE)
    keep = [
        i
        for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True))
        if day.answer(requests[r].id, day.providers[c].id).accepts
    ]
    rows, cols = rows[keep], cols[keep]
    if len(rows) > max_pairs:
        return None
    var_row, var_col, var_pool, var_cg = _variables(day, requests, prov, req, rnd, rows, cols)
    n = len(var_row)
    if not n:
        return 0, [], 0.0
    distance = rnd.distance[var_row, var_col]
    ones = np.ones(n)
    a_req = sparse.csr_matrix((ones, (var_row, np.arange(n))), shape=(len(requests), n))
    pools = sorted(set(var_pool))
    pool_index = {p: i for i, p in enumerate(pools)}
    a_pool = sparse.csr_matrix(
        (ones, ([pool_index[p] for p in var_pool], np.arange(n))), shape=(len(pools), n)
    )
    with_cg = [i for i in range(n) if var_cg[i] >= 0]
    a_cg = sparse.csr_matrix(
        (np.ones(len(with_cg)), ([var_cg[i] for i in with_cg], with_cg)), shape=(len(prov.cg), n)
    )
    caps = [day.providers[int(rnd.pool_provider[p])].capacity for p in pools]
    started = time_module.process_time()
    result = linprog(
        distance - 1000.0,  # serving one more request is worth more than any travel
        A_ub=sparse.vstack([a_req, a_pool, a_cg]).tocsr(),
        b_ub=np.r_[np.ones(len(requests)), caps, [c.max_jobs for c in prov.cg]],
        bounds=(0, 1),
        method="highs-ds",
    )
    elapsed = time_module.process_time() - started
    chosen = result.x > 0.5
    return int(chosen.sum()), distance[chosen].tolist(), elapsed


def _variables(
    day: Day,
    requests: list[RequestInfo],
    prov: Providers,
    req: Requests,
    rnd: Round,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
) -> tuple[list[int], list[int], list[int], list[int]]:
    """One variable per feasible (request, provider) pair, or per (request, caregiver) where the
    provider has caregivers: (request, provider, pool, caregiver index or -1) of each."""
    var_row, var_col, var_pool, var_cg = [], [], [], []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        p = day.providers[c]
        pool = int(rnd.pool[req.group[r], c])
        for cg in p.caregivers or (None,):
            if cg is not None and not _qualifies(cg, requests[r]):
                continue
            var_row.append(r)
            var_col.append(c)
            var_pool.append(pool)
            var_cg.append(prov.cg_index[cg.id] if cg is not None else -1)
    return var_row, var_col, var_pool, var_cg


def _qualifies(cg: CaregiverInfo, request: RequestInfo) -> bool:
    if not required_skills(request) <= cg.skills:
        return False
    return not (cg.shift_start and cg.shift_end) or overlaps(
        cg.shift_start, cg.shift_end, request.window_start, request.window_end
    )
