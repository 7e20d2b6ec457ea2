"""The hard constraints and costs of core.py, vectorised over requests x providers (numpy), for
the batch matcher. Each check here mirrors one of core.pair_stage; a test holds them equal.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dispatch.core.clock import local
from dispatch.core.geo import EARTH_RADIUS_KM
from dispatch.matching.core import (
    FEASIBLE,
    CapacityKey,
    Prices,
    ProviderInfo,
    RequestInfo,
    Usage,
    capacity_keys,
    minutes,
    provider_kinds_for,
    required_skills,
)
from dispatch.matching.scoring import Weights, record_parts

KIND_CODES = {"day_care": 0, "canteen": 1, "home_care": 2}
KINDS_BY_CODE = ("day_care", "canteen", "home_care", "other")

Matrix = NDArray[np.float64]
Mask = NDArray[np.bool_]
Ints = NDArray[np.int64]


def _mask(skills: Iterable[str], bits: dict[str, int]) -> int:
    out = 0
    for s in skills:
        out |= 1 << bits.setdefault(s, len(bits))
    return out


def _unit_vectors(lat_deg: Sequence[float], lon_deg: Sequence[float]) -> Matrix:
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1).reshape(
        -1, 3
    )


def great_circle_km(a: Matrix, b: Matrix) -> Matrix:
    """Distances between unit vectors: the chord through one matrix product, then its arc (the
    same great circle as core's haversine_km, to well under a metre)."""
    # Three broadcast products rather than BLAS: an inner dimension of 3 gains nothing from
    # BLAS, whose threads only burn CPU time on a shared two-core machine.
    dot = a[:, 0:1] * b[None, :, 0] + a[:, 1:2] * b[None, :, 1] + a[:, 2:3] * b[None, :, 2]
    chord_sq = np.maximum(2.0 - 2.0 * dot, 0.0)
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(np.sqrt(chord_sq) / 2, 1.0))


class Providers:
    """The providers as arrays, built once per batch (or kept across batches: providers_for)."""

    def __init__(self, providers: Sequence[ProviderInfo], weights: Weights, bits: dict[str, int]) -> None:
        self.bits = bits  # skill -> bit of the masks below; a batch's requests may add skills
        self.infos = list(providers)
        self.index = {p.id: i for i, p in enumerate(self.infos)}
        self.xyz = _unit_vectors([p.lat for p in self.infos], [p.lon for p in self.infos])
        self.radius = np.array([p.service_radius_km for p in self.infos])
        self.kind = np.array([KIND_CODES.get(p.kind, 3) for p in self.infos])
        self.capacity = np.array([p.capacity for p in self.infos], dtype=np.int64)
        self.open = np.array([minutes(p.open_time) for p in self.infos], dtype=float)
        self.close = np.array([minutes(p.close_time) for p in self.infos], dtype=float)
        self.skills = np.array([_mask(p.skills, bits) for p in self.infos], dtype=np.int64)
        self.record_parts = [
            {k: round(v, 3) for k, v in record_parts(p.record, weights).items()} for p in self.infos
        ]
        self.record = np.array([sum(parts.values()) for parts in self.record_parts])
        # Caregivers, grouped by provider, for the vectorised skills / shift / load checks.
        cgs = [(i, cg) for i, p in enumerate(self.infos) for cg in p.caregivers]
        self.cg = [cg for _, cg in cgs]
        self.cg_provider = np.array([i for i, _ in cgs], dtype=np.int64)
        self.cg_skills = np.array([_mask(cg.skills, bits) for cg in self.cg], dtype=np.int64)
        shifts = [(c.shift_start, c.shift_end) for c in self.cg]
        self.cg_start = np.array([minutes(s) if s and e else -1e9 for s, e in shifts])
        self.cg_end = np.array([minutes(e) if s and e else 1e9 for s, e in shifts])
        self.cg_of: dict[int, int] = {cg.id: i for i, cg in cgs}  # caregiver id -> provider index
        self.cg_index: dict[int, int] = {cg.id: k for k, cg in enumerate(self.cg)}


# Provider arrays of the last few batches, by the identity of their ProviderInfo objects (held
# here, so no id can be reused while kept) and the weights. The match worker passes the same
# objects run after run while the registry is unchanged (capacity.load_providers), and building
# the arrays of ~400 providers was a fifth of a batch's decision.
_KEPT: dict[tuple[tuple[int, ...], Weights], Providers] = {}
_KEEP = 4


def providers_for(providers: Sequence[ProviderInfo], weights: Weights) -> Providers:
    """The providers as arrays: those of an earlier batch if they were made of the very same
    (immutable) ProviderInfo objects, in the same order, with the same weights."""
    key = (tuple(map(id, providers)), weights)
    kept = _KEPT.get(key)
    if kept is None:
        kept = _KEPT[key] = Providers(providers, weights, {})
        while len(_KEPT) > _KEEP:
            del _KEPT[next(iter(_KEPT))]
    return kept


class Requests:
    """The batch's requests as arrays, built once per batch (rounds take subsets by index)."""

    def __init__(self, requests: Sequence[RequestInfo], prov: Providers, bits: dict[str, int]) -> None:
        self.infos = list(requests)
        n = len(self.infos)
        self.xyz = _unit_vectors([r.lat for r in self.infos], [r.lon for r in self.infos])
        allowed: list[list[bool]] = []
        primary, spans, need, group = [], [], [], []
        groups: dict[tuple[object, str], int] = {}
        self.keys: list[dict[str, CapacityKey]] = []
        for r in self.infos:
            kinds = provider_kinds_for(r)
            primary.append(KIND_CODES[kinds[0]])
            allowed.append([k in kinds for k in KINDS_BY_CODE])
            start = local(r.window_start)
            first = start.hour * 60 + start.minute + start.second / 60
            spans.append((first, first + (r.window_end - r.window_start).total_seconds() / 60))
            need.append(_mask(required_skills(r), bits))
            sig = (start.date(), r.slot or "lunch")
            if sig not in groups:
                groups[sig] = len(self.keys)
                self.keys.append(capacity_keys(r.window_start, r.slot))
            group.append(groups[sig])
        self.allowed = np.array(allowed, dtype=bool).reshape(n, len(KINDS_BY_CODE))
        self.primary = np.array(primary, dtype=np.int64)
        self.group = np.array(group, dtype=np.int64)
        span = np.array(spans, dtype=float).reshape(n, 2)
        self.start, self.end = span[:, 0:1], span[:, 1:2]
        self.need = np.array(need, dtype=np.int64)
        # Sparse per-request facts: (row, provider index) pairs.
        self.refused = _pairs(((i, pid) for i, r in enumerate(self.infos) for pid in r.refused), prov.index)
        self.declined = _pairs(((i, pid) for i, r in enumerate(self.infos) for pid in r.excluded), prov.index)
        served = ((i, pid) for i, r in enumerate(self.infos) for pid in r.served_by)
        by_caregiver = ((i, cid) for i, r in enumerate(self.infos) for cid in r.served_by_caregivers)
        self.served = _pairs(served, prov.index) + _pairs(by_caregiver, prov.cg_of)
        self.pools = _pools(self.keys, prov)


def _pairs(items: Iterable[tuple[int, int]], index: Mapping[int, int]) -> list[tuple[int, int]]:
    return [(i, index[key]) for i, key in items if key in index]


@dataclass
class Round:
    """One round's requests (rows: indices into Requests) against every provider."""

    rows: Ints
    distance: Matrix
    stage: Ints  # checks passed, FEASIBLE = all
    cost: Matrix  # inf where infeasible
    pool: Ints  # capacity signature x provider -> pool code
    pool_provider: Ints  # pool code -> provider index
    pool_used: Ints  # pool code -> units in use
    pool_key: list[CapacityKey]
    held: Mask  # per row: some provider it could use is full only of units pending offers hold


def evaluate(
    req: Requests,
    rows: Ints,
    prov: Providers,
    usage: Usage,
    weights: Weights,
    prices: Prices | None,
) -> Round:
    """Every hard constraint and the cost of every feasible pair, for the given rows."""
    distance = great_circle_km(req.xyz[rows], prov.xyz)
    s1 = req.allowed[rows][:, prov.kind] & (distance <= prov.radius[None, :])
    position = {int(r): i for i, r in enumerate(rows)}
    refused = _sparse_false(s1.shape, req.refused, position)
    declined = _sparse_false(s1.shape, req.declined, position)
    start, end = req.start[rows], req.end[rows]
    is_open = np.maximum(start, prov.open[None, :]) < np.minimum(end, prov.close[None, :])
    skilled, on_shift, cg_free = _caregiver_checks(prov, usage, req.need[rows], start, end)
    pools = req.pools
    pool, pool_provider, pool_key = pools.code, pools.provider, pools.key
    pool_used = np.array([usage.used.get(k, 0) for k in pools.ids], dtype=np.int64)
    pool_held = np.array([usage.held.get(k, 0) for k in pools.ids], dtype=np.int64)
    left = prov.capacity[pool_provider[pool]] - pool_used[pool]
    s2 = s1 & refused
    s3 = s2 & declined
    s4 = s3 & is_open
    s5 = s4 & skilled
    s6 = s5 & on_shift
    s7 = s6 & cg_free & (left[req.group[rows]] > 0)
    stage = s1.astype(np.int64) + s2 + s3 + s4 + s5 + s6 + s7
    bonus = np.zeros(s1.shape)
    for row, p_index in req.served:
        if row in position:
            bonus[position[row], p_index] = weights.continuity
    price: Matrix | float = 0.0
    if prices:
        per_pool = np.array([prices.get(k, 0.0) for k in pools.ids])
        price = per_pool[pool][req.group[rows]]
    fallback = np.where(prov.kind[None, :] != req.primary[rows][:, None], weights.fallback_km, 0.0)
    cost = weights.distance * distance + fallback + prov.record[None, :] + price - bonus
    cost = np.where(stage == FEASIBLE, cost, np.inf)
    held = ((stage == FEASIBLE - 1) & (pool_held[pool][req.group[rows]] > 0)).any(axis=1)
    return Round(rows, distance, stage, cost, pool, pool_provider, pool_used, pool_key, held)


def _sparse_false(shape: tuple[int, ...], pairs: list[tuple[int, int]], position: dict[int, int]) -> Mask:
    out = np.ones(shape, dtype=bool)
    for row, p_index in pairs:
        if row in position:
            out[position[row], p_index] = False
    return out


@dataclass(frozen=True)
class Pools:
    """Capacity pools: one code per (provider, capacity key) the batch's signatures touch, in
    the order first met. Built once per batch; only the units in use change from round to round."""

    code: Ints  # capacity signature x provider -> pool code
    provider: Ints  # pool code -> provider index
    key: list[CapacityKey]
    ids: list[tuple[int, CapacityKey]]  # pool code -> (provider id, key), as Usage and prices key it


def _pools(keys: Sequence[Mapping[str, CapacityKey]], prov: Providers) -> Pools:
    codes: dict[tuple[int, CapacityKey], int] = {}
    pool = np.zeros((len(keys), len(prov.infos)), dtype=np.int64)
    for g, kind_keys in enumerate(keys):
        for j, p in enumerate(prov.infos):
            pool[g, j] = codes.setdefault((j, kind_keys.get(p.kind, ("open",))), len(codes))
    ids = [(prov.infos[j].id, key) for j, key in codes]
    return Pools(pool, np.array([j for j, _ in codes], dtype=np.int64), [key for _, key in codes], ids)


def _caregiver_checks(
    prov: Providers, usage: Usage, need: Ints, start: Matrix, end: Matrix
) -> tuple[Mask, Mask, Mask]:
    """Per request x provider: skilled, a skilled caregiver on shift, one of those with a job
    to spare. Providers without caregivers answer on their own skills."""
    n, p = len(need), len(prov.infos)
    skilled = (need[:, None] & ~prov.skills[None, :]) == 0
    on_shift = np.ones((n, p), dtype=bool)
    free = np.ones((n, p), dtype=bool)
    if not prov.cg:
        return skilled, on_shift, free
    cg_skilled = (need[:, None] & ~prov.cg_skills[None, :]) == 0
    cg_on = cg_skilled & (np.maximum(start, prov.cg_start[None, :]) < np.minimum(end, prov.cg_end[None, :]))
    spare = np.array([usage.caregiver_jobs[c.id] < c.max_jobs for c in prov.cg])
    cg_free = cg_on & spare[None, :]
    starts = np.flatnonzero(np.r_[True, prov.cg_provider[1:] != prov.cg_provider[:-1]])
    cols = prov.cg_provider[starts]
    skilled[:, cols] = np.logical_or.reduceat(cg_skilled, starts, axis=1)
    on_shift[:, cols] = np.logical_or.reduceat(cg_on, starts, axis=1)
    free[:, cols] = np.logical_or.reduceat(cg_free, starts, axis=1)
    return skilled, on_shift, free
