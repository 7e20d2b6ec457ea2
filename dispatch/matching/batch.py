"""Batch assignment: the requests waiting at one moment are placed together by a min-cost
assignment (SciPy's `linear_sum_assignment`) over requests x capacity units, not one by one.

- Priority: urgent requests (emergencies are urgent) are placed first, on all the capacity
  there is, then high, then normal.
- Capacity: each provider's pool (seats of a day, meals of a slot, jobs at once) becomes as
  many columns as it has units left, capped to what the batch can use. The k-th unit of a pool
  costs the load it brings (scoring.load_part), so filling one provider to the brim is paid
  for exactly as one-by-one offers would pay for it.
- Only each request's TOP_K cheapest feasible providers get columns, and requests that share
  no pool (other kinds, far-apart towns) are solved apart: a batch of 1,000 requests x 400
  providers stays small. A request left over (its few best were taken by others) is placed
  in the next round against what is left, and so is one whose caregivers were all taken
  within the round (caregivers' jobs at once are a second, nested capacity).
- Every decision's score and parts are computed at the moment its unit is taken, by the same
  scoring as the console's candidate list (core.candidates).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

from dispatch.matching.arrays import Ints, Providers, Requests, Round, evaluate, providers_for
from dispatch.matching.core import (
    FEASIBLE,
    PRIORITY_RANK,
    CapacityKey,
    Decision,
    Holding,
    Prices,
    ProviderInfo,
    RequestInfo,
    Usage,
    candidates,
    capacity_keys,
    caregiver_stage,
    order_for_matching,
    provider_kinds_for,
    reason_for,
    score_pair,
)
from dispatch.matching.scoring import Weights

TOP_K = 8
MAX_ROUNDS = 12
UNPLACED = 1e6  # dearer than any placement: as many requests as possible are placed
SHIFT = 1e3  # keeps every weight non-zero (the solver reads a zero as no edge)


class _Units:
    """One round's assignment problem: each feasible row may take any unit left in one of its
    TOP_K cheapest pools, with as many units of a pool as the rows can use; rows and pools
    split into connected parts that are solved apart."""

    def __init__(self, rnd: Round, req: Requests, prov: Providers, weights: Weights) -> None:
        self.rows = np.flatnonzero(np.isfinite(rnd.cost).any(axis=1))  # positions in the round
        self.cost = rnd.cost[self.rows]
        k = min(TOP_K, self.cost.shape[1])
        if k < self.cost.shape[1]:
            top = np.argpartition(self.cost, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(k), (len(self.rows), 1))
        m_row, j = np.nonzero(np.isfinite(np.take_along_axis(self.cost, top, axis=1)))
        self.m_row, m_provider = m_row, top[m_row, j]
        group = req.group[rnd.rows[self.rows[m_row]]]
        codes, self.m_pool = np.unique(rnd.pool[group, m_provider], return_inverse=True)
        used = rnd.pool_used[codes]
        self.pool_provider = rnd.pool_provider[codes]
        capacity = prov.capacity[self.pool_provider]
        self.units = np.minimum(capacity - used, np.bincount(self.m_pool, minlength=len(codes)))
        # The k-th unit of a pool brings the load (used + k + 1) / capacity: scoring.load_part.
        self.unit_pool = np.repeat(np.arange(len(codes)), self.units)
        self.unit_first = np.cumsum(self.units) - self.units  # each pool's first unit
        unit_rank = np.arange(len(self.unit_pool)) - self.unit_first[self.unit_pool]
        self.unit_load = (
            weights.load * (used[self.unit_pool] + unit_rank + 1) / np.maximum(capacity[self.unit_pool], 1)
        )
        self.label = _components(m_row, self.m_pool, len(self.rows), len(codes))

    def parts(self) -> list[tuple[Ints, Ints]]:
        """(rows, pools) of each connected part that has units to give."""
        n = len(self.rows)
        row_label, pool_label = self.label[:n], self.label[n:]
        row_order, pool_order = np.argsort(row_label, kind="stable"), np.argsort(pool_label, kind="stable")
        labels = np.unique(row_label)
        row_cut = np.searchsorted(row_label[row_order], labels, side="right")
        pool_cut = np.searchsorted(pool_label[pool_order], labels, side="right")
        out = []
        for rows, pools in zip(
            np.split(row_order, row_cut[:-1]), np.split(pool_order, pool_cut[:-1]), strict=True
        ):
            if len(pools) and self.units[pools].sum():
                out.append((rows, pools))
        return out


def _components(m_row: Ints, m_pool: Ints, n_rows: int, n_pools: int) -> Ints:
    """The connected part of each row, then of each pool, of the graph whose edges are
    (m_row, m_pool), m_row ascending. Built as CSR directly: SciPy's conversion from COO cost
    more than the search itself on a small batch, and it runs once per round and tier."""
    n = n_rows + n_pools
    if n_rows <= 1:  # one part (a tier of one request is common: an urgent one)
        return np.zeros(n, dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1 : n_rows + 1] = np.cumsum(np.bincount(m_row, minlength=n_rows))
    indptr[n_rows + 1 :] = indptr[n_rows]  # pools' edges come from the rows (undirected)
    graph = csr_matrix((np.ones(len(m_row)), n_rows + m_pool, indptr), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return label


def _solve(u: _Units, rows: Ints, pools: Ints) -> list[tuple[float, int, int]]:
    """Min-cost assignment of one connected part: (cost, round position, provider) per row placed."""
    row_local = np.full(len(u.rows), -1)
    row_local[rows] = np.arange(len(rows))
    first = np.zeros(len(u.units), dtype=np.int64)  # each pool's first column within the part
    first[pools] = np.cumsum(u.units[pools]) - u.units[pools]
    unit_first = u.unit_first
    sel = np.flatnonzero(row_local[u.m_row] >= 0)  # members of this part, in row order
    per = u.units[u.m_pool[sel]]
    member = np.repeat(sel, per)
    rank = np.arange(len(member)) - np.repeat(np.cumsum(per) - per, per)
    e_row = row_local[u.m_row[member]]
    e_col = first[u.m_pool[member]] + rank
    e_unit = unit_first[u.m_pool[member]] + rank
    e_cost = u.cost[u.m_row[member], u.pool_provider[u.m_pool[member]]] + u.unit_load[e_unit]
    n, n_cols = len(rows), int(u.units[pools].sum())
    # Every row may also stay unplaced (a dummy column of its own, dearer than any placement), so
    # a full matching always exists; weights are shifted because the solver reads zero as no edge.
    # Built as CSR directly: the edges come in row order, each row's dummy after its edges.
    indptr = np.r_[0, np.cumsum(np.bincount(e_row, minlength=n) + 1)]
    data, indices = np.empty(indptr[-1]), np.empty(indptr[-1], dtype=np.int64)
    at = np.arange(len(e_row)) + e_row
    data[at], indices[at] = e_cost + SHIFT, e_col
    data[indptr[1:] - 1], indices[indptr[1:] - 1] = UNPLACED + SHIFT, n_cols + np.arange(n)
    graph = csr_matrix((data, indices, indptr), shape=(n, n_cols + n))
    r_idx, c_idx = min_weight_full_bipartite_matching(graph)
    placed = c_idx < n_cols
    r_idx, c_idx = r_idx[placed], c_idx[placed]
    col_unit = np.repeat(unit_first[pools] - first[pools], u.units[pools]) + np.arange(n_cols)
    unit = col_unit[c_idx]
    p_index = u.pool_provider[u.unit_pool[unit]]
    value = u.cost[rows[r_idx], p_index] + u.unit_load[unit]
    return list(zip(value.tolist(), u.rows[rows[r_idx]].tolist(), p_index.tolist(), strict=True))


def _assign(rnd: Round, req: Requests, prov: Providers, weights: Weights) -> list[tuple[int, int]]:
    """The min-cost assignment of rows to capacity units: (round position, provider index),
    cheapest first."""
    u = _Units(rnd, req, prov, weights)
    chosen: list[tuple[float, int, int]] = []
    for rows, pools in u.parts():
        if len(rows) == 1:  # one request alone: the cheapest next unit of its pools
            lo, hi = np.searchsorted(u.m_row, [rows[0], rows[0] + 1])
            pool = u.m_pool[lo:hi]
            value = u.cost[rows[0], u.pool_provider[pool]] + u.unit_load[u.unit_first[pool]]
            best = int(np.argmin(value))
            chosen.append((float(value[best]), int(u.rows[rows[0]]), int(u.pool_provider[pool[best]])))
        else:
            chosen += _solve(u, rows, pools)
    return [(pos, p_index) for _, pos, p_index in sorted(chosen)]


def _take(
    request: RequestInfo,
    p_index: int,
    key: CapacityKey,
    distance_km: float,
    usage: Usage,
    prov: Providers,
    weights: Weights,
    prices: Prices | None,
) -> Decision | None:
    """Take one unit for the request, if it (and a caregiver) is still free within the round."""
    provider = prov.infos[p_index]
    used = usage.used.get((provider.id, key), 0)
    if used >= provider.capacity:
        return None
    caregiver = None
    if provider.caregivers:
        _, caregiver = caregiver_stage(provider, request, usage)
        if caregiver is None:
            return None
    price = prices.get((provider.id, key), 0.0) if prices else 0.0
    score, parts = score_pair(
        request, provider, distance_km, caregiver, used + 1, weights, price, prov.record_parts[p_index]
    )
    usage.take_unit(provider.id, key, caregiver)
    return Decision(request.id, request.version, provider.id, caregiver, round(distance_km, 3), score, parts)


def _place_tier(
    tier: Ints,
    req: Requests,
    prov: Providers,
    usage: Usage,
    weights: Weights,
    prices: Prices | None,
) -> list[Decision]:
    """Rounds of assignment until every request of the tier is placed or has no feasible unit."""
    decisions: list[Decision] = []
    pending = tier
    for _ in range(MAX_ROUNDS):
        if not len(pending):
            return decisions
        rnd = evaluate(req, pending, prov, usage, weights, prices)
        placed: set[int] = set()
        for pos, p_index in _assign(rnd, req, prov, weights):
            row = int(pending[pos])
            request = req.infos[row]
            key = req.keys[req.group[row]].get(prov.infos[p_index].kind, ("open",))
            distance = float(rnd.distance[pos, p_index])
            decision = _take(request, p_index, key, distance, usage, prov, weights, prices)
            if decision is not None:
                decisions.append(decision)
                placed.add(pos)
        best = rnd.stage.max(axis=1)
        carry = []
        for pos, row in enumerate(pending):
            if pos in placed:
                continue
            if best[pos] < FEASIBLE:
                request = req.infos[int(row)]
                decisions.append(
                    Decision(
                        request.id,
                        request.version,
                        None,
                        reason=reason_for(int(best[pos]), bool(rnd.held[pos])),
                    )
                )
            else:
                carry.append(int(row))
        pending = np.array(carry, dtype=np.int64)
        if not placed:  # cannot happen while a feasible unit exists: stop rather than spin
            break
    # Caregivers contended for round after round: finish the stragglers one by one.
    return decisions + _one_by_one([req.infos[int(r)] for r in pending], prov, usage, weights, prices)


def _one_by_one(
    pending: list[RequestInfo],
    prov: Providers,
    usage: Usage,
    weights: Weights,
    prices: Prices | None,
) -> list[Decision]:
    out = []
    for request in order_for_matching(pending):
        found, reason = candidates(request, prov.infos, usage, weights, prices)
        decision = None
        if found:
            best = found[0].provider
            key = capacity_keys(request.window_start, request.slot).get(best.kind, ("open",))
            decision = _take(
                request, prov.index[best.id], key, found[0].distance_km, usage, prov, weights, prices
            )
        out.append(decision or Decision(request.id, request.version, None, reason=reason or "all_full"))
    return out


# Provider kinds that compete for the same requests (a delivered meal may go to a canteen or a
# home-care provider); requests of different classes never share a provider, so each class is
# placed on its own, against only its own providers.
KIND_CLASSES = (frozenset({"day_care"}), frozenset({"canteen", "home_care"}))


def decide_batch(
    requests: Sequence[RequestInfo],
    providers: Sequence[ProviderInfo],
    holdings: Iterable[Holding],
    weights: Weights | None = None,
    prices: Prices | None = None,
    *,
    usage: Usage | None = None,
) -> list[Decision]:
    """Place a batch: urgent first, then high, then normal, each tier by min-cost assignment.
    `usage`: capacity in use to decide on instead of `holdings` (taken from as units are given)."""
    weights = weights or Weights()
    usage = usage if usage is not None else Usage({p.id: p for p in providers}, holdings)
    decisions: list[Decision] = []
    for kinds in KIND_CLASSES:
        mine = [r for r in requests if set(provider_kinds_for(r)) <= kinds]
        theirs = [p for p in providers if p.kind in kinds]
        decisions += _decide_class(mine, theirs, usage, weights, prices)
    return decisions


def _decide_class(
    requests: list[RequestInfo],
    providers: list[ProviderInfo],
    usage: Usage,
    weights: Weights,
    prices: Prices | None,
) -> list[Decision]:
    if not requests:
        return []
    if not providers:
        return [Decision(r.id, r.version, None, reason=reason_for(0)) for r in order_for_matching(requests)]
    prov = providers_for(providers, weights)
    ordered = order_for_matching(requests)
    req = Requests(ordered, prov, dict(prov.bits))  # the batch's own skills, not the kept arrays'
    ranks = np.array([PRIORITY_RANK.get(r.priority, 3) for r in ordered])
    decisions: list[Decision] = []
    for rank in np.unique(ranks):
        decisions += _place_tier(np.flatnonzero(ranks == rank), req, prov, usage, weights, prices)
    return decisions
