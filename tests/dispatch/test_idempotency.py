"""Idempotency-Key on POST /api/requests (IETF draft semantics)."""

from __future__ import annotations

from sqlmodel import func, select

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.orders.models import ServiceRequest
from tests.helpers import Api, make_user


def _rows() -> int:
    with session_scope(write=False) as s:
        return s.exec(select(func.count()).select_from(ServiceRequest)).one()


def test_same_key_same_body_replays_the_first_answer(api: Api) -> None:
    w = api.world()
    body = {"elder_id": w["elder"]["id"], "kind": "meal", "details": {"slot": "lunch", "delivery": True}}
    first = api.call(
        "POST", "/api/requests", w["operator"], json=body, headers={"Idempotency-Key": "call-42"}
    )
    again = api.call(
        "POST", "/api/requests", w["operator"], json=body, headers={"Idempotency-Key": "call-42"}
    )
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == first.json()
    assert _rows() == 1


def test_same_key_other_body_is_422(api: Api) -> None:
    w = api.world()
    body = {"elder_id": w["elder"]["id"], "kind": "meal"}
    api.ok("POST", "/api/requests", w["operator"], 202, json=body, headers={"Idempotency-Key": "k1"})
    r = api.call(
        "POST",
        "/api/requests",
        w["operator"],
        json={**body, "kind": "visit"},
        headers={"Idempotency-Key": "k1"},
    )
    assert r.status_code == 422 and "different request body" in r.text
    assert _rows() == 1


def test_keys_are_per_account(api: Api) -> None:
    w = api.world()
    other = make_user(Role.OPERATOR)
    body = {"elder_id": w["elder"]["id"], "kind": "meal"}
    api.ok("POST", "/api/requests", w["operator"], 202, json=body, headers={"Idempotency-Key": "shared"})
    api.ok("POST", "/api/requests", other, 202, json=body, headers={"Idempotency-Key": "shared"})
    assert _rows() == 2


def test_malformed_key_is_400(api: Api) -> None:
    w = api.world()
    body = {"elder_id": w["elder"]["id"], "kind": "meal"}
    r = api.call("POST", "/api/requests", w["operator"], json=body, headers={"Idempotency-Key": "x" * 300})
    assert r.status_code == 400 and "Idempotency-Key" in r.text
    assert _rows() == 0
