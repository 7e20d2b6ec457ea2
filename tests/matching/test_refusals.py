"""Providers an elder refused: `POST/GET/DELETE /api/elders/{id}/refused-providers` (operators
and admins, audited), and the matcher never offering that elder's requests to them again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from dispatch.core.audit import AuditEntry
from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from tests.helpers import ELDER, HOME_CARE, Api, drain_jobs, make_user


def _second(api: Api, w: dict[str, Any]) -> tuple[dict[str, Any], str]:
    body = {**HOME_CARE, "name": "第二服务社", "lat": 38.97, "phone": "+8613600000002"}
    second = api.ok("POST", "/api/providers", w["manager"], 201, json=body)
    return second, make_user(Role.PROVIDER, provider_id=second["id"])


def _path(w: dict[str, Any]) -> str:
    return f"/api/elders/{w['elder']['id']}/refused-providers"


def _audit(action: str) -> list[AuditEntry]:
    with session_scope(write=False) as session:
        return list(
            session.exec(select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.id)))
        )


def test_a_refused_provider_is_never_offered_the_elders_requests(api: Api) -> None:
    w = api.world()
    second, second_user = _second(api, w)
    refusal = api.ok(
        "POST",
        _path(w),
        w["operator"],
        201,
        json={"provider_id": w["provider"]["id"], "reason": "老人不愿再用"},
    )
    assert (refusal["provider_id"], refusal["provider_name"], refusal["reason"]) == (
        w["provider"]["id"], HOME_CARE["name"], "老人不愿再用",
    )  # fmt: skip
    req = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    drain_jobs()
    assert api.ok("GET", "/api/offers?status=pending", w["provider_user"]) == []  # nearer, but refused
    (offer,) = api.ok("GET", "/api/offers?status=pending", second_user)
    assert offer["request_id"] == req["id"]
    # Another elder's requests still go to the nearer provider.
    other = api.ok("POST", "/api/elders", w["operator"], 201, json={**ELDER, "phone": "+8613800000002"})
    api.ok("POST", "/api/requests", w["operator"], 202, json={"elder_id": other["id"], "kind": "home_care"})
    drain_jobs()
    assert len(api.ok("GET", "/api/offers?status=pending", w["provider_user"])) == 1
    listed = api.ok("GET", f"/api/requests/{req['id']}/candidates", w["operator"])
    assert [c["provider_id"] for c in listed["candidates"]] == [second["id"]]


def test_refusing_takes_back_the_pending_offer_and_the_request_moves_on(api: Api) -> None:
    w = api.world()
    second, second_user = _second(api, w)
    req = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    drain_jobs()
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    refusal = api.ok("POST", _path(w), w["operator"], 201, json={"provider_id": w["provider"]["id"]})
    assert refusal["withdrawn_offers"] == [offer["id"]]
    assert api.call("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"]).status_code == 409
    drain_jobs()
    (moved,) = api.ok("GET", "/api/offers?status=pending", second_user)
    assert moved["request_id"] == req["id"]
    timeline = [e["type"] for e in api.ok("GET", f"/api/requests/{req['id']}", w["operator"])["timeline"]]
    assert timeline == ["request.created", "request.offered", "request.declined", "request.offered"]


def test_everyone_in_range_refused_escalates_with_the_reason(api: Api) -> None:
    w = api.world()
    api.ok("POST", _path(w), w["operator"], 201, json={"provider_id": w["provider"]["id"]})
    req = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    drain_jobs()
    final = api.ok("GET", f"/api/requests/{req['id']}", w["operator"])
    assert final["status"] == "escalated" and final["escalation_reason"] == "all_refused"


def test_list_and_lift_a_refusal(api: Api) -> None:
    w = api.world()
    second, _ = _second(api, w)
    for p in (w["provider"], second):
        api.ok("POST", _path(w), w["admin"], 201, json={"provider_id": p["id"], "reason": f"r{p['id']}"})
    listed = api.ok("GET", _path(w), w["operator"])
    assert [r["provider_id"] for r in listed] == [w["provider"]["id"], second["id"]]
    lifted = api.ok("DELETE", f"{_path(w)}/{w['provider']['id']}", w["operator"])
    assert lifted["provider_id"] == w["provider"]["id"]
    assert [r["provider_id"] for r in api.ok("GET", _path(w), w["operator"])] == [second["id"]]
    assert api.call("DELETE", f"{_path(w)}/{w['provider']['id']}", w["operator"]).status_code == 404
    # Every read and change is in the elder's audit log.
    assert [e.elder_id for e in _audit("refuse_provider")] == [w["elder"]["id"]] * 2
    assert [e.what for e in _audit("unrefuse_provider")] == [f"provider {w['provider']['id']}"]
    assert any(e.what == "refused_providers" for e in _audit("read"))


def test_bad_input_is_refused_with_a_reason_and_changes_nothing(api: Api) -> None:
    w = api.world()
    path = _path(w)
    assert api.call("POST", path, w["operator"], json={"provider_id": 99999}).status_code == 404
    assert (
        api.call(
            "POST", "/api/elders/99999/refused-providers", w["operator"], json={"provider_id": 1}
        ).status_code
        == 404
    )
    for body in (
        {},
        {"provider_id": "x"},
        {"provider_id": 0},
        {"provider_id": 1, "extra": 1},
        {"provider_id": 1, "reason": "x" * 201},
    ):
        r = api.call("POST", path, w["operator"], json=body)
        assert r.status_code == 422 and "detail" in r.json(), body
    api.ok("POST", path, w["operator"], 201, json={"provider_id": w["provider"]["id"]})
    twice = api.call("POST", path, w["operator"], json={"provider_id": w["provider"]["id"]})
    assert twice.status_code == 409 and "already refused" in twice.json()["detail"]
    assert len(api.ok("GET", path, w["operator"])) == 1


@pytest.mark.parametrize("role", [Role.MANAGER, Role.FAMILY, Role.PROVIDER])
def test_only_operators_and_admins(api: Api, role: Role) -> None:
    w = api.world()
    user = w["provider_user"] if role == Role.PROVIDER else make_user(role)
    assert api.call("GET", _path(w), user).status_code == 403
    assert api.call("POST", _path(w), user, json={"provider_id": w["provider"]["id"]}).status_code == 403
    assert api.call("DELETE", f"{_path(w)}/{w['provider']['id']}", user).status_code == 403
