"""The short way in for the hot routes (dispatch/core/hotpaths.py) answers exactly as FastAPI
does: the same requests, sent to the app with its hot paths and to the app without them,
get the same status, body and headers, and a refused request changes nothing either way.
The well-formed ones must really have taken the short way (else this would prove nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from dispatch.app import create_app
from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.core.hotpaths import HotPathsApp
from dispatch.orders.models import IdempotencyRecord, Offer, ServiceRequest
from tests.helpers import Api, drain_jobs, make_user

SECURITY = ("x-content-type-options", "x-frame-options", "referrer-policy", "permissions-policy")


@pytest.fixture
def plain() -> Iterator[TestClient]:
    with TestClient(create_app(hot_paths=False)) as test_client:
        yield test_client


def _hot(client: TestClient) -> Any:
    app = client.app
    assert isinstance(app, HotPathsApp) and app.hot is not None
    return app.hot


def _state() -> tuple[int, int, int, list[str]]:
    with session_scope(write=False) as s:
        return (
            s.exec(select(func.count()).select_from(ServiceRequest)).one(),
            s.exec(select(func.count()).select_from(IdempotencyRecord)).one(),
            s.exec(select(func.count()).select_from(Offer)).one(),
            sorted(o.status for o in s.exec(select(Offer))),
        )


def _same(hot: Any, plain: Any) -> None:
    assert hot.status_code == plain.status_code, (hot.text, plain.text)
    assert hot.content == plain.content, (hot.text, plain.text)
    for name in ("content-type", "www-authenticate", *SECURITY):
        assert hot.headers.get(name) == plain.headers.get(name), name


def _both(client: TestClient, plain: TestClient, method: str, path: str, **kwargs: Any) -> tuple[Any, Any]:
    before = _state()
    hot_answer = client.request(method, path, **kwargs)
    assert _state() == before, "a refused request changed something"
    plain_answer = plain.request(method, path, **kwargs)
    assert _state() == before
    _same(hot_answer, plain_answer)
    return hot_answer, plain_answer


def _auth(api: Api, user: str) -> dict[str, str]:
    return api.as_(user)


def test_refused_requests_get_fastapis_own_answers(api: Api, client: TestClient, plain: TestClient) -> None:
    w = api.world()
    op = _auth(api, w["operator"])
    body = {"elder_id": w["elder"]["id"], "kind": "meal", "details": {"slot": "lunch"}}
    hot = _hot(client)
    handed_before = hot.handed_over
    cases: list[tuple[str, dict[str, Any]]] = [
        ("no token", {"json": body}),
        ("forged token", {"json": body, "headers": {"Authorization": "Bearer not.a.token"}}),
        ("basic auth", {"json": body, "headers": {"Authorization": "Basic b3A6cHc="}}),
        ("provider may not file", {"json": body, "headers": _auth(api, w["provider_user"])}),
        ("manager may not file", {"json": body, "headers": _auth(api, w["manager"])}),
        (
            "malformed JSON",
            {"content": b'{"elder_id": 1,', "headers": {**op, "Content-Type": "application/json"}},
        ),
        (
            "not UTF-8",
            {"content": b'{"note": "\xff"}', "headers": {**op, "Content-Type": "application/json"}},
        ),
        ("text/plain", {"content": json.dumps(body), "headers": {**op, "Content-Type": "text/plain"}}),
        ("no content type", {"content": json.dumps(body), "headers": op}),
        ("empty body", {"content": b"", "headers": {**op, "Content-Type": "application/json"}}),
        ("a list", {"json": [body], "headers": op}),
        ("null", {"content": b"null", "headers": {**op, "Content-Type": "application/json"}}),
        ("extra field", {"json": {**body, "status": "assigned"}, "headers": op}),
        ("missing elder", {"json": {"kind": "meal"}, "headers": op}),
        ("elder id 0", {"json": {**body, "elder_id": 0}, "headers": op}),
        ("huge elder id", {"json": {**body, "elder_id": 2**40}, "headers": op}),
        ("unknown kind", {"json": {**body, "kind": "taxi"}, "headers": op}),
        ("half a window", {"json": {**body, "window_start": "2026-12-01T11:00:00+08:00"}, "headers": op}),
        ("note too long", {"json": {**body, "note": "长" * 501}, "headers": op}),
    ]
    for case, kwargs in cases:
        hot_answer, _ = _both(client, plain, "POST", "/api/requests", **kwargs)
        assert 400 <= hot_answer.status_code < 500, case
    assert hot.handed_over - handed_before == len(cases), "each of these must be FastAPI's to answer"


def test_domain_refusals_are_rendered_alike(api: Api, client: TestClient, plain: TestClient) -> None:
    w = api.world()
    op = _auth(api, w["operator"])
    family = make_user(Role.FAMILY)
    body = {"elder_id": w["elder"]["id"], "kind": "visit"}
    hot = _hot(client)
    served_before = hot.served
    cases: list[tuple[str, int, dict[str, Any]]] = [
        ("unknown elder", 404, {"json": {**body, "elder_id": 999_999}, "headers": op}),
        ("an elder not the family's", 404, {"json": body, "headers": _auth(api, family)}),
        ("a key with a space", 400, {"json": body, "headers": {**op, "Idempotency-Key": "a b"}}),
    ]
    for case, status, kwargs in cases:
        hot_answer, _ = _both(client, plain, "POST", "/api/requests", **kwargs)
        assert hot_answer.status_code == status, (case, hot_answer.text)
        assert hot_answer.json()["detail"], case
    assert hot.served - served_before == len(cases), "domain refusals are the short way's own answers"


def test_taken_requests_read_back_as_answered(api: Api, client: TestClient, plain: TestClient) -> None:
    w = api.world()
    op = _auth(api, w["operator"])
    hot = _hot(client)
    served_before = hot.served
    body = {"elder_id": w["elder"]["id"], "kind": "meal", "details": {"slot": "dinner"}, "note": "少盐"}
    keyed = {**op, "Idempotency-Key": "parity-1"}
    first = client.post("/api/requests", json=body, headers=keyed)
    assert first.status_code == 202, first.text
    assert hot.served == served_before + 1
    stored = plain.get(f"/api/requests/{first.json()['id']}", headers=op)
    assert first.json() == stored.json()
    for name in ("content-type", *SECURITY):
        assert first.headers.get(name) == stored.headers.get(name), name
    # The replay of a known key: the first answer again, 200, both ways alike.
    replay, _ = _both(client, plain, "POST", "/api/requests", json=body, headers=keyed)
    assert replay.status_code == 200 and replay.json() == first.json()
    reused, _ = _both(client, plain, "POST", "/api/requests", json={**body, "note": "x"}, headers=keyed)
    assert reused.status_code == 422
    # The same body through FastAPI alone answers the same shape.
    other = plain.post("/api/requests", json=body, headers=op)
    assert other.status_code == 202
    assert set(other.json()) == set(first.json())
    assert {
        k: v for k, v in other.json().items() if k in ("kind", "details", "note", "status", "township")
    } == {k: v for k, v in first.json().items() if k in ("kind", "details", "note", "status", "township")}


def test_accepts_alike_both_ways(api: Api, client: TestClient, plain: TestClient) -> None:
    w = api.world()
    op = _auth(api, w["operator"])
    prov = _auth(api, w["provider_user"])
    for _ in range(2):
        assert client.post("/api/requests", json={"elder_id": w["elder"]["id"], "kind": "visit"}, headers=op)
    drain_jobs()
    offers = sorted(o["id"] for o in api.ok("GET", "/api/offers?status=pending", w["provider_user"]))
    assert len(offers) == 2
    hot = _hot(client)
    handed_before = hot.handed_over
    for path, headers in (
        (f"/api/offers/{offers[0]}/accept", {}),
        (f"/api/offers/{offers[0]}/accept", op),
        ("/api/offers/0/accept", prov),
        ("/api/offers/abc/accept", prov),
        (f"/api/offers/{2**31}/accept", prov),
        ("/api/offers/007/accept", {}),
    ):
        _both(client, plain, "POST", path, headers=headers)
    # No token, a wrong role: handed over; the malformed ids do not even match the short way.
    assert hot.handed_over - handed_before == 2
    missing, _ = _both(client, plain, "POST", "/api/offers/999999/accept", headers=prov)
    assert missing.status_code == 404
    won = client.post(f"/api/offers/{offers[0]}/accept", headers=prov)
    assert won.status_code == 200 and won.json()["status"] == "assigned"
    assert won.json() == plain.get(f"/api/requests/{won.json()['id']}", headers=op).json()
    again, _ = _both(client, plain, "POST", f"/api/offers/{offers[0]}/accept", headers=prov)
    assert again.status_code == 409
    through_fastapi = plain.post(f"/api/offers/{offers[1]}/accept", headers=prov)
    assert through_fastapi.status_code == 200 and through_fastapi.json()["status"] == "assigned"
