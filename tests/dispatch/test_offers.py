"""Offers through real RQ workers: decline, expiry, escalation, manual dispatch, cancel."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.orders import offers
from dispatch.orders import sweep as sweeper
from tests.helpers import HOME_CARE, Api, drain_jobs, make_user, wait_for


def _two_providers(api: Api, w: dict[str, Any]) -> tuple[dict[str, Any], str]:
    second = api.ok(
        "POST", "/api/providers", w["manager"], 201,
        json={**HOME_CARE, "name": "第二服务社", "lat": 38.96, "lon": 116.99, "phone": "+8613600000002"},
    )  # fmt: skip
    return second, make_user(Role.PROVIDER, provider_id=second["id"])


def _post(api: Api, w: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"elder_id": w["elder"]["id"], "kind": "home_care", **extra}
    return api.ok("POST", "/api/requests", w["operator"], 202, json=body)  # type: ignore[no-any-return]


def _pending(api: Api, user: str) -> list[dict[str, Any]]:
    return api.ok("GET", "/api/offers?status=pending", user)  # type: ignore[no-any-return]


def test_decline_goes_to_next_candidate_then_escalates(api: Api) -> None:
    w = api.world()
    second, second_user = _two_providers(api, w)
    req = _post(api, w)
    drain_jobs()
    first_offer = _pending(api, w["provider_user"])[0]  # the nearer provider first
    assert first_offer["distance_km"] < 1.0
    api.ok(
        "POST", f"/api/offers/{first_offer['id']}/decline", w["provider_user"], json={"reason": "人手不足"}
    )
    drain_jobs()
    assert _pending(api, w["provider_user"]) == []
    second_offer = _pending(api, second_user)[0]
    assert second_offer["request_id"] == req["id"]
    api.ok("POST", f"/api/offers/{second_offer['id']}/decline", second_user, json={"reason": "太远"})
    drain_jobs()
    final = api.ok("GET", f"/api/requests/{req['id']}", w["operator"])
    assert final["status"] == "escalated" and final["escalation_reason"] == "all_declined"
    assert [e["type"] for e in final["timeline"]] == [
        "request.created", "request.offered", "request.declined",
        "request.offered", "request.declined", "request.escalated",
    ]  # fmt: skip
    # The operator dispatches by hand out of `escalated`.
    done = api.ok(
        "POST", f"/api/requests/{req['id']}/assign", w["operator"], json={"provider_id": second["id"]}
    )
    assert done["status"] == "assigned" and done["provider_id"] == second["id"]
    assert done["timeline"][-1]["type"] == "request.assigned"


def test_unanswered_offer_expires_through_rqs_scheduler(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFER_TTL_SECONDS", "1")
    from dispatch.core.config import get_settings

    get_settings.cache_clear()
    w = api.world()
    req = _post(api, w)
    drain_jobs()
    # Any status: on a slow machine the one-second offer may already be gone.
    offer = api.ok("GET", "/api/offers", w["provider_user"])[0]

    def expired() -> bool:
        drain_jobs()  # RQ's scheduler moves the expiry job to its queue only once it is due
        return api.ok("GET", f"/api/requests/{req['id']}", w["operator"])["status"] == "escalated"

    wait_for(expired, timeout=10, what="the offer to expire and the request to escalate")
    final = api.ok("GET", f"/api/requests/{req['id']}", w["operator"])
    assert [e["type"] for e in final["timeline"]][-2:] == ["request.expired", "request.escalated"]
    r = api.call("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    assert r.status_code == 409


def test_accept_twice_and_after_decline_is_409(api: Api) -> None:
    w = api.world()
    _post(api, w)
    drain_jobs()
    offer = _pending(api, w["provider_user"])[0]
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    r = api.call("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    assert r.status_code == 409 and "no longer pending" in r.text
    assert api.call("POST", f"/api/offers/{offer['id']}/decline", w["provider_user"]).status_code == 409


def test_other_provider_cannot_touch_an_offer(api: Api) -> None:
    w = api.world()
    _, second_user = _two_providers(api, w)
    _post(api, w)
    drain_jobs()
    offer = _pending(api, w["provider_user"])[0]
    assert api.call("POST", f"/api/offers/{offer['id']}/accept", second_user).status_code == 404
    assert _pending(api, second_user) == []


def test_no_provider_in_range_escalates_with_reason(api: Api) -> None:
    w = api.world()
    req = _post(api, w, kind="day_care")  # no day-care center exists at all
    drain_jobs()
    final = api.ok("GET", f"/api/requests/{req['id']}", w["operator"])
    assert final["status"] == "escalated" and final["escalation_reason"] == "no_provider_in_range"


def test_capacity_is_never_exceeded(api: Api) -> None:
    w = api.world()  # capacity 5 jobs at once
    reqs = [_post(api, w) for _ in range(7)]
    drain_jobs()
    statuses = [api.ok("GET", f"/api/requests/{r['id']}", w["operator"])["status"] for r in reqs]
    assert statuses.count("offered") == 5
    # The other two wait: every unit is held by a pending offer that may yet come free (issue 8).
    assert statuses.count("queued") == 2
    for offer in _pending(api, w["provider_user"]):
        api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    with session_scope() as session:  # the sweeper re-wakes the matcher for requests left queued
        offers.request_matching(session)
    drain_jobs()
    statuses = [api.ok("GET", f"/api/requests/{r['id']}", w["operator"])["status"] for r in reqs]
    assert statuses.count("assigned") == 5 and statuses.count("escalated") == 2
    escalated = [r for r, s in zip(reqs, statuses, strict=True) if s == "escalated"]
    detail = api.ok("GET", f"/api/requests/{escalated[0]['id']}", w["operator"])
    assert detail["escalation_reason"] == "all_full"
    r = api.call(
        "POST",
        f"/api/requests/{escalated[0]['id']}/assign",
        w["operator"],
        json={"provider_id": w["provider"]["id"]},
    )
    assert r.status_code == 409 and "no capacity" in r.text


def test_cancel_withdraws_the_pending_offer(api: Api) -> None:
    w = api.world()
    req = _post(api, w)
    drain_jobs()
    offer = _pending(api, w["provider_user"])[0]
    done = api.ok("POST", f"/api/requests/{req['id']}/cancel", w["operator"], json={"reason": "家属已安排"})
    assert done["status"] == "cancelled"
    assert _pending(api, w["provider_user"]) == []
    assert api.call("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"]).status_code == 409
    assert api.call("POST", f"/api/requests/{req['id']}/cancel", w["operator"]).status_code == 409


def test_request_not_placed_in_time_is_escalated_by_the_sweeper(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSIGN_SLA_SECONDS", "1")
    from dispatch.core.config import get_settings

    get_settings.cache_clear()
    w = api.world()
    req = _post(api, w)
    drain_jobs()
    assert api.ok("GET", f"/api/requests/{req['id']}", w["operator"])["status"] == "offered"

    def swept() -> bool:
        with session_scope() as session:
            sweeper.escalate_overdue(session)
        return api.ok("GET", f"/api/requests/{req['id']}", w["operator"])["status"] == "escalated"

    wait_for(swept, timeout=5, what="the overdue request to be escalated")
    final = api.ok("GET", f"/api/requests/{req['id']}", w["operator"])
    assert final["escalation_reason"] == "not_placed_in_time"
    assert _pending(api, w["provider_user"]) == []  # the offer was withdrawn
