"""`GET /api/requests/{id}/candidates`: the matcher's feasible providers, best first, for a
manual dispatch; providers that declined stay listed (flagged); staff only."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.core.auth import Role
from tests.helpers import HOME_CARE, Api, drain_jobs, make_user


def _second(api: Api, w: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {**HOME_CARE, "name": "第二服务社", "lat": 38.99, "lon": 117.0, "phone": "+8613600000002", **extra}
    return api.ok("POST", "/api/providers", w["manager"], 201, json=body)  # type: ignore[no-any-return]


def test_candidates_are_sorted_by_the_matchers_score(api: Api) -> None:
    w = api.world()
    far = _second(api, w)
    _second(api, w, name="日间照料中心", kind="day_care", skills=[])  # wrong kind: never listed
    request = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    answer = api.ok("GET", f"/api/requests/{request['id']}/candidates", w["operator"])
    assert answer["request_id"] == request["id"] and answer["reason"] is None
    listed = answer["candidates"]
    assert [c["provider_id"] for c in listed] == [w["provider"]["id"], far["id"]]
    assert listed[0]["score"] <= listed[1]["score"]
    assert listed[0]["distance_km"] < listed[1]["distance_km"]
    assert set(listed[0]["score_parts"]) >= {"distance_km"}
    assert listed[0]["capacity_left"] == HOME_CARE["capacity"]
    assert listed[0]["name"] == HOME_CARE["name"] and listed[0]["phone"] == HOME_CARE["phone"]
    assert not any(c["declined_before"] for c in listed)


def test_providers_that_declined_stay_listed_for_the_operator_to_ask_again(api: Api) -> None:
    w = api.world()
    request = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    drain_jobs()
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    api.ok("POST", f"/api/offers/{offer['id']}/decline", w["provider_user"], json={"reason": "人手不足"})
    drain_jobs()
    assert api.ok("GET", f"/api/requests/{request['id']}", w["operator"])["status"] == "escalated"
    (only,) = api.ok("GET", f"/api/requests/{request['id']}/candidates", w["operator"])["candidates"]
    assert only["provider_id"] == w["provider"]["id"] and only["declined_before"] is True
    done = api.ok(
        "POST",
        f"/api/requests/{request['id']}/assign",
        w["operator"],
        json={"provider_id": only["provider_id"]},
    )
    assert done["status"] == "assigned"


def test_nobody_feasible_says_why(api: Api) -> None:
    w = api.world()
    request = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "day_care"}
    )
    answer = api.ok("GET", f"/api/requests/{request['id']}/candidates", w["operator"])
    assert answer["candidates"] == [] and answer["reason"] == "no_provider_in_range"


@pytest.mark.parametrize("role", [Role.PROVIDER, Role.FAMILY, Role.MANAGER])
def test_only_operators_and_admins_may_ask(api: Api, role: Role) -> None:
    w = api.world()
    request = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    user = w["provider_user"] if role == Role.PROVIDER else make_user(role)
    assert api.call("GET", f"/api/requests/{request['id']}/candidates", user).status_code == 403
    assert api.call("GET", f"/api/requests/{request['id']}/candidates", w["admin"]).status_code == 200


def test_unknown_request_is_404(api: Api) -> None:
    w = api.world()
    assert api.call("GET", "/api/requests/99999/candidates", w["operator"]).status_code == 404


# ---- matching (issue 8) -----------------------------------------------------------------


def test_the_list_and_the_matchers_offer_agree_on_provider_score_and_parts(api: Api) -> None:
    w = api.world()
    _second(api, w)
    request = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    (best, *_) = api.ok("GET", f"/api/requests/{request['id']}/candidates", w["operator"])["candidates"]
    assert {"distance_km", "load", "acceptance", "completion", "rating", "no_shows", "continuity"} <= set(
        best["score_parts"]
    )
    assert abs(sum(best["score_parts"].values()) - best["score"]) < 0.01
    drain_jobs()
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    assert (offer["provider_id"], offer["score"], offer["score_parts"]) == (
        best["provider_id"],
        best["score"],
        best["score_parts"],
    )


def test_a_provider_the_elder_refused_is_left_off_and_says_why(api: Api) -> None:
    w = api.world()
    api.ok(
        "POST",
        f"/api/elders/{w['elder']['id']}/refused-providers",
        w["operator"],
        201,
        json={"provider_id": w["provider"]["id"]},
    )
    request = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    answer = api.ok("GET", f"/api/requests/{request['id']}/candidates", w["operator"])
    assert answer["candidates"] == [] and answer["reason"] == "all_refused"
