"""Capacity prices for the live matcher (dispatch/matching/prices.py computes them): the
forecast of today's remaining demand read from the recent past, and the prices kept in Redis.

The forecast: every request of the last `MATCH_FORECAST_DAYS` days that was filed at a later
time of day than now, moved to today (its window moved by whole days), weighing 1/days — the
same elders ask for the same services at much the same hours. A maintenance cron job
(`workers.matching.refresh_prices`, every `MATCH_PRICE_REFRESH_SECONDS`) solves the program
and stores the prices in Redis; each batch reads them in one GET, so the batch itself never
waits for the program. Missing or stale prices (older than three refreshes) count as none:
the matcher then falls back to the plain batch assignment, it never stops.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import date, datetime, timedelta

import redis
from sqlmodel import Session, col, select

from dispatch.core.clock import LOCAL_TZ, local, utcnow
from dispatch.core.config import get_settings
from dispatch.elders.models import Elder
from dispatch.matching import capacity, records
from dispatch.matching.core import CapacityKey, Prices, RequestInfo, Usage
from dispatch.matching.prices import aggregate, capacity_prices
from dispatch.matching.scoring import Weights
from dispatch.orders.models import ServiceRequest

PRICES_KEY = "eldercare:match:prices"
FORECAST_LIMIT = 50_000


def load_forecast(
    session: Session, *, days: int, now: datetime | None = None
) -> list[tuple[RequestInfo, float]]:
    """The requests still to come today, as the last `days` days suggest (request, weight)."""
    now = now or utcnow()
    today = local(now).date()
    midnight = datetime.combine(today, datetime.min.time(), LOCAL_TZ)
    rows = session.exec(
        select(ServiceRequest, Elder.lat, Elder.lon)
        .join(Elder, col(Elder.id) == ServiceRequest.elder_id)
        .where(
            col(ServiceRequest.created_at) >= midnight - timedelta(days=days),
            col(ServiceRequest.created_at) < midnight,
        )
        .order_by(col(ServiceRequest.id).desc())
        .limit(FORECAST_LIMIT)
    ).all()
    clock = local(now).time()
    out = []
    for r, lat, lon in rows:
        created = local(r.created_at)
        if created.time() < clock:
            continue  # already past at this time of day
        shift = timedelta(days=(today - created.date()).days)
        info = capacity.request_info(r, lat, lon, ())
        out.append(
            (replace(info, window_start=r.window_start + shift, window_end=r.window_end + shift), 1.0 / days)
        )
    return out


def compute_prices(session: Session, weights: Weights) -> dict[tuple[int, CapacityKey], float]:
    """Prices now: the forecast against the capacity left at this moment."""
    settings = get_settings()
    forecast = load_forecast(session, days=settings.match_forecast_days)
    if not forecast:
        return {}
    recs = records.load_records(session, max_age_seconds=settings.match_record_cache_seconds)
    providers = capacity.load_providers(session, records=recs)
    usage = Usage({p.id: p for p in providers}, capacity.load_holdings(session))
    return capacity_prices(
        aggregate(forecast), providers, usage, weights, unplaced_km=settings.match_price_cap_km
    )


def store_prices(conn: redis.Redis, prices: Prices, *, at: float | None = None) -> None:
    rows = [[pid, _key_out(key), price] for (pid, key), price in prices.items()]
    conn.set(PRICES_KEY, json.dumps({"at": at or time.time(), "prices": rows}), ex=24 * 3600)


def read_prices(conn: redis.Redis, *, max_age_seconds: float) -> dict[tuple[int, CapacityKey], float]:
    """The stored prices, or none if missing, unreadable or older than `max_age_seconds`."""
    raw = conn.get(PRICES_KEY)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        if time.time() - float(data["at"]) > max_age_seconds:
            return {}
        return {(int(pid), _key_in(key)): float(price) for pid, key, price in data["prices"]}
    except (ValueError, KeyError, TypeError):
        return {}


def _key_out(key: CapacityKey) -> list[object]:
    return [v.isoformat() if isinstance(v, date) else v for v in key]


def _key_in(raw: list[object]) -> CapacityKey:
    kind, *rest = raw
    if kind in ("day", "slot") and rest:
        rest[0] = date.fromisoformat(str(rest[0]))
    return (kind, *rest)
