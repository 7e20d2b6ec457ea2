"""Bad input gets a clear 4xx with a reason and changes nothing; never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import func, select

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.elders.models import Elder
from dispatch.orders.models import ServiceRequest
from services.models import Provider
from tests.helpers import ELDER, HOME_CARE, Api, make_user


def _counts() -> tuple[int, int, int]:
    with session_scope(write=False) as s:
        return (
            s.exec(select(func.count()).select_from(Elder)).one(),
            s.exec(select(func.count()).select_from(Provider)).one(),
            s.exec(select(func.count()).select_from(ServiceRequest)).one(),
        )


ELDER_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown care level", {**ELDER, "care_level": "bedridden"}, "care_level"),
    ("unknown assistance", {**ELDER, "assistance": "rich"}, "assistance"),
    ("latitude off the globe", {**ELDER, "lat": 123.0}, "lat"),
    ("longitude outside Jinghai", {**ELDER, "lon": 121.47}, "outside Jinghai"),
    ("unknown township", {**ELDER, "township": "浦东新区"}, "unknown township"),
    ("not a phone", {**ELDER, "phone": "12"}, "phone"),
    ("birth in the future", {**ELDER, "birth_date": "2999-01-01"}, "birth_date"),
    ("mass assignment", {**ELDER, "id": 99, "deceased_on": "2020-01-01"}, "Extra inputs"),
]


@pytest.mark.parametrize(("case", "body", "reason"), ELDER_CASES, ids=[c[0] for c in ELDER_CASES])
def test_bad_elder_is_refused(api: Api, case: str, body: dict[str, Any], reason: str) -> None:
    operator = make_user(Role.OPERATOR)
    before = _counts()
    r = api.call("POST", "/api/elders", operator, json=body)
    assert r.status_code == 422, r.text
    assert reason in r.text
    assert _counts() == before


PROVIDER_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown kind", {**HOME_CARE, "kind": "hospital"}, "kind"),
    ("unknown skill", {**HOME_CARE, "skills": ["juggling"]}, "skills"),
    ("zero capacity", {**HOME_CARE, "capacity": 0}, "capacity"),
    ("hours reversed", {**HOME_CARE, "hours": {"open": "18:00", "close": "08:00"}}, "after hours.open"),
    ("hours not a time", {**HOME_CARE, "hours": {"open": "8am", "close": "18:00"}}, "HH:MM"),
    ("latitude NaN", {**HOME_CARE, "lat": "NaN"}, "lat"),
]


@pytest.mark.parametrize(("case", "body", "reason"), PROVIDER_CASES, ids=[c[0] for c in PROVIDER_CASES])
def test_bad_provider_is_refused(api: Api, case: str, body: dict[str, Any], reason: str) -> None:
    manager = make_user(Role.MANAGER)
    before = _counts()
    r = api.call("POST", "/api/providers", manager, json=body)
    assert r.status_code == 422, r.text
    assert reason in r.text
    assert _counts() == before


def test_request_bad_inputs(api: Api) -> None:
    w = api.world()
    op = w["operator"]
    before = _counts()
    cases = [
        ({"elder_id": w["elder"]["id"], "kind": "massage"}, 422, "kind"),
        ({"elder_id": 999999, "kind": "meal"}, 404, "elder 999999 not found"),
        ({"elder_id": w["elder"]["id"], "kind": "meal", "priority": "asap"}, 422, "priority"),
        ({"elder_id": w["elder"]["id"], "kind": "meal", "status": "assigned"}, 422, "Extra inputs"),
        ({"elder_id": w["elder"]["id"], "kind": "meal", "provider_id": 1}, 422, "Extra inputs"),
        (
            {
                "elder_id": w["elder"]["id"],
                "kind": "meal",
                "window_start": "2026-12-01T12:00:00+08:00",
                "window_end": "2026-12-01T11:00:00+08:00",
            },
            422,
            "window_end must be after",
        ),  # fmt: skip
        (
            {"elder_id": w["elder"]["id"], "kind": "meal", "window_start": "2026-12-01T12:00:00"},
            422,
            "window",
        ),
    ]
    for body, status, reason in cases:
        r = api.call("POST", "/api/requests", op, json=body)
        assert r.status_code == status, (body, r.text)
        assert reason in r.text, (body, r.text)
    assert _counts() == before


def test_malformed_json_missing_token_and_bad_token(api: Api) -> None:
    w = api.world()
    before = _counts()
    r = api.call(
        "POST",
        "/api/requests",
        w["operator"],
        content=b'{"elder_id": 1,',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "JSON" in r.text
    r = api.client.post("/api/requests", json={"elder_id": w["elder"]["id"], "kind": "meal"})
    assert r.status_code == 401 and r.json()["detail"] == "missing bearer token"
    r = api.client.get("/api/requests", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401 and "invalid or expired token" in r.text
    assert _counts() == before


def test_foreign_elder_is_not_found_for_family(api: Api) -> None:
    w = api.world()
    family = make_user(Role.FAMILY)
    other = api.ok("POST", "/api/elders", w["operator"], 201, json={**ELDER, "phone": "+8613800000002"})
    api.ok("POST", f"/api/elders/{w['elder']['id']}/family", w["operator"], 201, json={"username": family})
    before = _counts()
    # The linked elder is visible, the other one answers exactly like an id that does not exist.
    assert api.call("GET", f"/api/elders/{w['elder']['id']}", family).status_code == 200
    foreign = api.call("GET", f"/api/elders/{other['id']}", family)
    missing = api.call("GET", "/api/elders/987654", family)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == f"elder {other['id']} not found"
    r = api.call("POST", "/api/requests", family, json={"elder_id": other["id"], "kind": "meal"})
    assert r.status_code == 404
    assert _counts() == before


def test_role_boundaries_are_refused(api: Api) -> None:
    w = api.world()
    family = make_user(Role.FAMILY)
    assert api.call("POST", "/api/providers", w["operator"], json=HOME_CARE).status_code == 403
    assert api.call("POST", "/api/elders", w["provider_user"], json=ELDER).status_code == 403
    assert api.call("GET", "/api/providers", family).status_code == 403
    assert api.call("POST", "/api/users", w["operator"], json={}).status_code == 403


def test_patch_refuses_null_and_unknown_fields(api: Api) -> None:
    w = api.world()
    eid = w["elder"]["id"]
    assert api.call("PATCH", f"/api/elders/{eid}", w["operator"], json={"name": None}).status_code == 422
    assert api.call("PATCH", f"/api/elders/{eid}", w["operator"], json={"role": "admin"}).status_code == 422
    assert api.ok("GET", f"/api/elders/{eid}", w["operator"])["name"] == ELDER["name"]
