"""The websocket: replay from `since`, then live events, scoped by role."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from dispatch.core.auth import Role
from tests.helpers import ELDER, Api, drain_jobs, make_user


def _receive(ws: Any, n: int) -> list[dict[str, Any]]:
    return [json.loads(ws.receive_text()) for _ in range(n)]


def test_replay_then_live_in_seq_order(api: Api, client: TestClient) -> None:
    w = api.world()
    token = api.login(w["operator"])
    req = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "visit"}
    )
    with client.websocket_connect(f"/ws/events?token={token}&since=0") as ws:
        first = _receive(ws, 1)[0]
        assert first["type"] == "request.created" and first["request_id"] == req["id"]
        drain_jobs()
        offered = _receive(ws, 1)[0]
        assert offered["type"] == "request.offered" and offered["seq"] > first["seq"]
        assert set(offered) == {"seq", "type", "request_id", "status", "at", "data"}
    # Resuming from the last seq seen misses nothing and repeats nothing.
    api.ok("POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "visit"})
    with client.websocket_connect(f"/ws/events?token={token}&since={offered['seq']}") as ws:
        resumed = _receive(ws, 1)[0]
        assert resumed["type"] == "request.created" and resumed["seq"] > offered["seq"]


def test_family_sees_only_linked_elders_and_provider_only_its_own(api: Api, client: TestClient) -> None:
    w = api.world()
    family = make_user(Role.FAMILY)
    api.ok("POST", f"/api/elders/{w['elder']['id']}/family", w["operator"], 201, json={"username": family})
    stranger = api.ok("POST", "/api/elders", w["operator"], 201, json={**ELDER, "phone": "+8613800000009"})
    provider_user = w["provider_user"]
    api.ok("POST", "/api/requests", w["operator"], 202, json={"elder_id": stranger["id"], "kind": "visit"})
    mine = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "visit"}
    )
    drain_jobs()
    with client.websocket_connect(f"/ws/events?token={api.login(family)}") as ws:
        events = _receive(ws, 2)
        assert {e["request_id"] for e in events} == {mine["id"]}
        assert [e["type"] for e in events] == ["request.created", "request.offered"]
    with client.websocket_connect(f"/ws/events?token={api.login(provider_user)}") as ws:
        events = _receive(ws, 2)  # the two offers made to this provider, nothing else
        assert [e["type"] for e in events] == ["request.offered", "request.offered"]


def test_refused_without_token_with_bad_token_and_foreign_origin(api: Api, client: TestClient) -> None:
    w = api.world()
    for url, headers in (
        ("/ws/events", {}),
        ("/ws/events?token=garbage", {}),
        (f"/ws/events?token={api.login(w['operator'])}", {"origin": "https://evil.example"}),
    ):
        try:
            with client.websocket_connect(url, headers=headers) as ws:
                ws.receive_text()
            raise AssertionError(f"{url} was accepted")
        except WebSocketDisconnect as exc:
            assert exc.code == 1008
