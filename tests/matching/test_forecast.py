"""Capacity prices in the live platform: the forecast read from the recent past, the prices a
cron job stores in Redis, and the matcher leaving a scarce unit to the elder who will have no
other choice later today."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from dispatch.core.clock import LOCAL_TZ, local, utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.redis import get_redis
from dispatch.matching import forecast
from dispatch.orders.models import ServiceRequest
from tests.helpers import ELDER, HOME_CARE, Api, drain_jobs
from workers.matching import refresh_prices

KM = 1 / 111.0


def _backdate(request_id: int, created: datetime) -> None:
    with session_scope() as session:
        r = session.get(ServiceRequest, request_id)
        assert r is not None
        shift = created - r.created_at
        r.created_at, r.window_start, r.window_end = created, r.window_start + shift, r.window_end + shift
        r.status = "completed"
        session.add(r)


def _file(api: Api, w: dict[str, Any], elder: dict[str, Any], **body: Any) -> dict[str, Any]:
    return api.ok(
        "POST",
        "/api/requests",
        w["operator"],
        202,
        json={"elder_id": elder["id"], "kind": "home_care", **body},
    )  # type: ignore[no-any-return]


def test_the_forecast_is_what_is_still_to_come_today_in_the_last_days(api: Api) -> None:
    w = api.world()
    today = local(utcnow()).date()
    ten = datetime.combine(today, datetime.min.time(), LOCAL_TZ) + timedelta(hours=10)
    ids = {}
    for name, created in {
        "yesterday 09:00": ten - timedelta(days=1, hours=1),
        "yesterday 11:00": ten - timedelta(days=1) + timedelta(hours=1),
        "3 days ago 15:00": ten - timedelta(days=3) + timedelta(hours=5),
        "8 days ago 11:00": ten - timedelta(days=8) + timedelta(hours=1),
        "today 08:00": ten - timedelta(hours=2),
    }.items():
        ids[name] = _file(api, w, w["elder"])["id"]
        _backdate(ids[name], created)
    with session_scope(write=False) as session:
        fc = forecast.load_forecast(session, days=7, now=ten)
    assert sorted(r.id for r, _ in fc) == sorted([ids["yesterday 11:00"], ids["3 days ago 15:00"]])
    assert all(weight == pytest.approx(1 / 7) for _, weight in fc)
    for r, _ in fc:  # moved to today, at the same hour
        assert local(r.window_start).date() == today
        assert local(r.window_start).hour in (11, 15)


def test_prices_survive_redis_and_go_stale() -> None:
    conn = get_redis()
    prices = {
        (3, ("slot", date(2026, 3, 2), "lunch")): 4.5,
        (4, ("day", date(2026, 3, 2))): 1.25,
        (5, ("open",)): 0.5,
    }
    forecast.store_prices(conn, prices)
    assert forecast.read_prices(conn, max_age_seconds=60) == prices
    forecast.store_prices(conn, prices, at=time.time() - 120)
    assert forecast.read_prices(conn, max_age_seconds=60) == {}
    conn.set(forecast.PRICES_KEY, "not json")
    assert forecast.read_prices(conn, max_age_seconds=60) == {}
    conn.delete(forecast.PRICES_KEY)
    assert forecast.read_prices(conn, max_age_seconds=60) == {}


@pytest.mark.parametrize("with_prices", [True, False])
def test_the_matcher_leaves_a_scarce_place_to_who_will_have_no_other_choice(
    api: Api, monkeypatch: pytest.MonkeyPatch, with_prices: bool
) -> None:
    monkeypatch.setenv("MATCH_FORECAST_DAYS", "7" if with_prices else "0")
    get_settings.cache_clear()
    w = api.world()
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"active": False})
    near = {**HOME_CARE, "service_radius_km": 5.0, "capacity": 1}
    shared = api.ok(
        "POST",
        "/api/providers",
        w["manager"],
        201,
        json={**near, "name": "北边服务社", "lat": ELDER["lat"] + 2 * KM, "phone": "+8613600000031"},
    )
    spare = api.ok(
        "POST",
        "/api/providers",
        w["manager"],
        201,
        json={
            **near,
            "name": "南边服务社",
            "lat": ELDER["lat"] - 3 * KM,
            "capacity": 5,
            "phone": "+8613600000032",
        },
    )
    north = api.ok(
        "POST",
        "/api/elders",
        w["operator"],
        201,
        json={**ELDER, "name": "北村老人", "phone": "+8613800000077", "lat": ELDER["lat"] + 6 * KM},
    )
    # Every day this week two elders up north, whom only the northern provider reaches, asked
    # late in the day: more than its one place.
    for days_ago in range(1, 8):
        late = datetime.combine(
            local(utcnow()).date() - timedelta(days=days_ago), datetime.max.time(), LOCAL_TZ
        )
        for _ in range(2):
            _backdate(_file(api, w, north)["id"], late - timedelta(seconds=1))
    assert refresh_prices() == (1 if with_prices else 0)
    req = _file(api, w, w["elder"])  # 2 km from the northern provider, 3 km from the southern one
    listed = api.ok("GET", f"/api/requests/{req['id']}/candidates", w["operator"])["candidates"]
    by_id = {c["provider_id"]: c for c in listed}
    assert ("capacity_price" in by_id[shared["id"]]["score_parts"]) == with_prices  # the console sees it too
    assert listed[0]["provider_id"] == (spare["id"] if with_prices else shared["id"])
    drain_jobs()
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["operator"])
    assert offer["request_id"] == req["id"]
    assert offer["provider_id"] == (spare["id"] if with_prices else shared["id"])
