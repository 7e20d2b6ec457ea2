"""Capacity prices: what one more unit of a provider's pool (a canteen's lunch places, a
day-care center's seats, a home-care provider's jobs) is expected to be worth to the requests
still to come today — so that the matcher, placing a request now, leaves a scarce unit to
someone who will have no other choice, and sends a request that has choices elsewhere.

Without them, batching only helps requests that arrive together: a request arriving alone
at 08:00 takes the nearest canteen, and the elder in the next village who calls at 10:00
finds every canteen in reach full. With them, the matcher behaves as if it could see the rest
of the day, on average: the prices are the dual values (shadow prices) of the capacity
constraints of one linear program — the forecast of today's remaining demand against the
capacity left, at the same costs the matcher uses (bid-price control, as airlines price seats).

The forecast is the recent past (dispatch/matching/forecast.py reads it): the requests of the
last days from this time of day on, each weighing 1/days. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from dispatch.matching.arrays import Providers, Requests, evaluate
from dispatch.matching.core import CapacityKey, ProviderInfo, RequestInfo, Usage
from dispatch.matching.scoring import Weights

# What placing a forecast request is worth against leaving it unplaced, in km-equivalents: the
# most a unit's price can reach (a request that cannot be placed goes to an operator).
UNPLACED_KM = 12.0
MIN_PRICE = 0.01


def aggregate(
    forecast: Sequence[tuple[RequestInfo, float]], *, grid_deg: float = 0.02, step_minutes: int = 60
) -> list[tuple[RequestInfo, float]]:
    """Forecast requests alike in what the matcher checks — kind, slot, delivery, skills, place
    (to a `grid_deg` cell, about 2 km) and window (to `step_minutes`) — merged into one with
    their weights summed: the same prices from a much smaller program."""
    merged: dict[tuple[object, ...], tuple[RequestInfo, float]] = {}
    step = timedelta(minutes=step_minutes)
    for r, w in forecast:
        lat, lon = round(r.lat / grid_deg) * grid_deg, round(r.lon / grid_deg) * grid_deg
        start = _floor(r.window_start, step)
        end = max(_floor(r.window_end, step), start + step)
        key = (r.kind, r.slot, r.delivery, r.skills, lat, lon, start, end)
        if key in merged:
            merged[key] = (merged[key][0], merged[key][1] + w)
        else:
            merged[key] = (replace(r, lat=lat, lon=lon, window_start=start, window_end=end), w)
    return list(merged.values())


def _floor(value: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return value - (value - epoch) % step


def capacity_prices(
    forecast: Sequence[tuple[RequestInfo, float]],
    providers: Sequence[ProviderInfo],
    usage: Usage,
    weights: Weights,
    *,
    unplaced_km: float = UNPLACED_KM,
) -> dict[tuple[int, CapacityKey], float]:
    """Prices by (provider id, capacity key) from the forecast demand (request, weight) against
    the capacity left in `usage`; pools that are not scarce have no price."""
    if not forecast or not providers:
        return {}
    bits: dict[str, int] = {}
    prov = Providers(providers, weights, bits)
    req = Requests([r for r, _ in forecast], prov, bits)
    rnd = evaluate(req, np.arange(len(forecast)), prov, usage, weights, None)
    rows, cols = np.nonzero(np.isfinite(rnd.cost))
    if not len(rows):
        return {}
    codes, var_pool = np.unique(rnd.pool[req.group[rows], cols], return_inverse=True)
    n_vars, n_req = len(rows), len(forecast)
    left = prov.capacity[rnd.pool_provider[codes]] - rnd.pool_used[codes]
    # Variables: x (one per feasible pair), then u (one per forecast request: left unplaced).
    a_eq = sparse.csr_matrix(
        (
            np.ones(n_vars + n_req),
            (np.r_[rows, np.arange(n_req)], np.r_[np.arange(n_vars), n_vars + np.arange(n_req)]),
        ),
        shape=(n_req, n_vars + n_req),
    )
    a_ub = sparse.csr_matrix(
        (np.ones(n_vars), (var_pool, np.arange(n_vars))), shape=(len(codes), n_vars + n_req)
    )
    result = linprog(
        np.r_[rnd.cost[rows, cols], np.full(n_req, unplaced_km)],
        A_ub=a_ub,
        b_ub=left.astype(float),
        A_eq=a_eq,
        b_eq=np.array([w for _, w in forecast], dtype=float),
        bounds=(0, None),
        method="highs",
    )
    if result.status != 0 or result.ineqlin is None:
        return {}
    duals = -np.asarray(result.ineqlin.marginals)
    out: dict[tuple[int, CapacityKey], float] = {}
    for code, price in zip(codes.tolist(), duals.tolist(), strict=True):
        if price >= MIN_PRICE:
            out[(prov.infos[int(rnd.pool_provider[code])].id, rnd.pool_key[code])] = round(price, 3)
    return out
