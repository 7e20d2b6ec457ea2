"""The offer cascade through the real API, real RQ workers (burst, with RQ's scheduler) and the
database: decline and expiry go to the next candidate, a canteen that cannot deliver falls
through to home care, capacity is held while an offer is pending and released when it ends,
and whoever is left says why."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.core.auth import Role
from dispatch.core.config import get_settings
from tests.helpers import HOME_CARE, Api, drain_jobs, make_user, wait_for

CANTEEN = {
    **HOME_CARE,
    "name": "静海镇老人家食堂一号店",
    "kind": "canteen",
    "capacity": 80,
    "skills": [],
    "hours": {"open": "10:00", "close": "19:30"},
    "lat": 38.948,
    "lon": 116.975,
    "phone": "+8613610000001",
}


def _provider(api: Api, w: dict[str, Any], **body: Any) -> tuple[dict[str, Any], str]:
    created = api.ok("POST", "/api/providers", w["manager"], 201, json={**HOME_CARE, **body})
    return created, make_user(Role.PROVIDER, provider_id=created["id"])


def _request(api: Api, w: dict[str, Any], **body: Any) -> dict[str, Any]:
    return api.ok("POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], **body})  # type: ignore[no-any-return]


def _status(api: Api, w: dict[str, Any], request_id: int) -> dict[str, Any]:
    return api.ok("GET", f"/api/requests/{request_id}", w["operator"])  # type: ignore[no-any-return]


def _pending(api: Api, user: str) -> list[dict[str, Any]]:
    return api.ok("GET", "/api/offers?status=pending", user)  # type: ignore[no-any-return]


def test_a_canteen_that_cannot_deliver_falls_through_to_home_care(api: Api) -> None:
    w = api.world()  # the world's home-care provider delivers meals (meal_delivery)
    _, canteen_user = _provider(api, w, **CANTEEN)
    lunch = {"kind": "meal", "details": {"slot": "lunch", "delivery": True}}
    req = _request(api, w, **lunch)
    drain_jobs()
    assert _pending(api, canteen_user) == []  # the nearer canteen has no meal_delivery
    (offer,) = _pending(api, w["provider_user"])
    assert offer["request_id"] == req["id"] and offer["score_parts"]["fallback_km"] == 2.0
    dine_in = _request(api, w, kind="meal", details={"slot": "lunch", "delivery": False})
    drain_jobs()
    assert [o["request_id"] for o in _pending(api, canteen_user)] == [dine_in["id"]]


def test_a_delivering_canteen_that_declines_falls_through_to_home_care(api: Api) -> None:
    w = api.world()
    canteen, canteen_user = _provider(api, w, **{**CANTEEN, "skills": ["meal_delivery"]})
    req = _request(api, w, kind="meal", details={"slot": "lunch", "delivery": True})
    drain_jobs()
    (first,) = _pending(api, canteen_user)
    api.ok("POST", f"/api/offers/{first['id']}/decline", canteen_user, json={"reason": "送餐员不在"})
    drain_jobs()
    (second,) = _pending(api, w["provider_user"])
    assert second["request_id"] == req["id"]
    api.ok("POST", f"/api/offers/{second['id']}/accept", w["provider_user"])
    done = _status(api, w, req["id"])
    assert done["status"] == "assigned" and done["provider_id"] == w["provider"]["id"]
    assert [e["type"] for e in done["timeline"]] == [
        "request.created", "request.offered", "request.declined", "request.offered", "request.assigned",
    ]  # fmt: skip


def test_capacity_is_held_while_an_offer_is_pending_and_released_when_it_ends(api: Api) -> None:
    w = api.world()
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"capacity": 1})
    first = _request(api, w, kind="home_care")
    drain_jobs()
    (offer,) = _pending(api, w["provider_user"])
    second = _request(api, w, kind="home_care")
    drain_jobs()
    # The only unit is held by the pending offer: the second waits (queued), nobody is overbooked.
    assert _status(api, w, second["id"])["status"] == "queued"
    assert len(_pending(api, w["provider_user"])) == 1
    api.ok("POST", f"/api/offers/{offer['id']}/decline", w["provider_user"], json={"reason": "临时有事"})
    drain_jobs()
    # Released: the second request gets the unit; the first has nobody left.
    (again,) = _pending(api, w["provider_user"])
    assert again["request_id"] == second["id"]
    final = _status(api, w, first["id"])
    assert final["status"] == "escalated" and final["escalation_reason"] == "all_declined"


def test_full_of_accepted_jobs_escalates_at_once_with_the_reason(api: Api) -> None:
    w = api.world()
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"capacity": 1})
    _request(api, w, kind="home_care")
    drain_jobs()
    (offer,) = _pending(api, w["provider_user"])
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    late = _request(api, w, kind="home_care")
    drain_jobs()
    final = _status(api, w, late["id"])
    assert final["status"] == "escalated" and final["escalation_reason"] == "all_full"


def test_expiry_by_rqs_scheduler_moves_on_then_escalates(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFER_TTL_SECONDS", "1")
    get_settings.cache_clear()
    w = api.world()
    second, second_user = _provider(api, w, name="第二服务社", lat=38.97, phone="+8613600000009")
    req = _request(api, w, kind="home_care")
    drain_jobs()

    def offered_to_second() -> bool:
        drain_jobs()  # RQ's scheduler moves each expiry job to the queue once it is due
        return any(o["request_id"] == req["id"] for o in api.ok("GET", "/api/offers", second_user))

    wait_for(offered_to_second, timeout=20, what="the first offer to expire and the second provider's offer")

    def escalated() -> bool:
        drain_jobs()
        return _status(api, w, req["id"])["status"] == "escalated"

    wait_for(escalated, timeout=20, what="the second offer to expire and the request to escalate")
    final = _status(api, w, req["id"])
    assert final["escalation_reason"] == "all_declined"
    assert [e["type"] for e in final["timeline"]] == [
        "request.created", "request.offered", "request.expired", "request.offered", "request.expired",
        "request.escalated",
    ]  # fmt: skip
    offers = api.ok("GET", "/api/offers", w["operator"])
    assert {o["provider_id"] for o in offers if o["request_id"] == req["id"]} == {
        w["provider"]["id"],
        second["id"],
    }
    assert all(o["status"] == "expired" for o in offers if o["request_id"] == req["id"])


def test_urgent_jumps_the_queue_for_the_last_unit(api: Api) -> None:
    w = api.world()
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"capacity": 1})
    normal = _request(api, w, kind="home_care")
    urgent = _request(api, w, kind="home_care", priority="urgent")  # filed later, one batch
    drain_jobs()
    (offer,) = _pending(api, w["provider_user"])
    assert offer["request_id"] == urgent["id"]
    assert _status(api, w, normal["id"])["status"] == "queued"  # waits for the held unit


def test_the_offer_carries_why_this_provider(api: Api) -> None:
    w = api.world()
    req = _request(api, w, kind="home_care")
    drain_jobs()
    (offer,) = _pending(api, w["provider_user"])
    assert offer["request_id"] == req["id"]
    parts = offer["score_parts"]
    assert {"distance_km", "load", "acceptance", "completion", "rating", "no_shows", "continuity"} <= set(
        parts
    )
    assert abs(sum(parts.values()) - offer["score"]) < 0.01
    assert parts["distance_km"] == pytest.approx(offer["distance_km"], abs=0.01)


def test_an_inactive_provider_is_never_offered(api: Api) -> None:
    w = api.world()
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"active": False})
    req = _request(api, w, kind="home_care")
    drain_jobs()
    final = _status(api, w, req["id"])
    assert final["status"] == "escalated" and final["escalation_reason"] == "no_provider_in_range"
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"active": True})
    again = _request(api, w, kind="home_care")
    drain_jobs()
    assert [o["request_id"] for o in _pending(api, w["provider_user"])] == [again["id"]]
