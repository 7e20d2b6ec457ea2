"""End to end on real processes: uvicorn, an RQ worker with RQ's scheduler, the embedded
Redis, SQLite, and a real websocket client reading every event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatch.core.auth import Role
from dispatch.core.jobs import QueueName
from tests.helpers import ELDER, HOME_CARE, make_user, wait_for
from tests.processes import EventListener, Platform, running_platform

pytestmark = pytest.mark.e2e


@pytest.fixture
def platform(env: dict[str, str], tmp_path: Path) -> Iterator[Platform]:
    with running_platform({**env, "OFFER_TTL_SECONDS": "2"}, tmp_path) as p:
        p.start_api()
        p.start_worker(QueueName.MATCH.value)
        yield p


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=10)
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            r = self.http.post("/api/auth/token", data={"username": user, "password": "password-123"})
            assert r.status_code == 200, r.text
            self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def ok(self, method: str, path: str, user: str, expect: int = 200, **kw: Any) -> Any:
        r = self.http.request(method, path, headers={"Authorization": f"Bearer {self.token(user)}"}, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()


def _setup(c: Client, providers: int) -> dict[str, Any]:
    admin, manager, operator = make_user(Role.ADMIN), make_user(Role.MANAGER), make_user(Role.OPERATOR)
    elder = c.ok("POST", "/api/elders", operator, 201, json=ELDER)
    accounts = []
    for n in range(providers):
        body = {**HOME_CARE, "name": f"服务社{n}", "lat": 38.95 + n * 0.01, "phone": f"+861360000000{n}"}
        provider = c.ok("POST", "/api/providers", manager, 201, json=body)
        username = f"provider{n}"
        account = {
            "username": username,
            "password": "password-123",
            "role": "provider",
            "provider_id": provider["id"],
        }
        c.ok("POST", "/api/users", admin, 201, json=account)
        accounts.append((provider, username))
    return {"operator": operator, "elder": elder, "providers": accounts}


def _pending_offer(c: Client, user: str) -> dict[str, Any]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: next(iter(c.ok("GET", "/api/offers?status=pending", user)), None),
        timeout=15,
        what=f"an offer for {user}",
    )


def test_request_to_completed_visit_over_real_processes(platform: Platform) -> None:
    c = Client(platform.base)
    w = _setup(c, providers=1)
    provider_user = w["providers"][0][1]
    ws = EventListener(
        f"ws://127.0.0.1:{platform.port}/ws/events?token={c.token(w['operator'])}&since=0"
    ).start()
    try:
        req = c.ok(
            "POST",
            "/api/requests",
            w["operator"],
            202,
            json={"elder_id": w["elder"]["id"], "kind": "home_care"},
        )
        offer = _pending_offer(c, provider_user)
        assert offer["request_id"] == req["id"]
        c.ok("POST", f"/api/offers/{offer['id']}/accept", provider_user)
        c.ok(
            "POST", f"/api/requests/{req['id']}/check-in", provider_user, json={"lat": 38.947, "lon": 116.974}
        )
        c.ok(
            "POST",
            f"/api/requests/{req['id']}/check-out",
            provider_user,
            json={"lat": 38.947, "lon": 116.974},
        )
        wait_for(lambda: len(ws.of(req["id"])) >= 5, timeout=10, what="five events on the websocket")
    finally:
        ws.close()
    frames = ws.of(req["id"])
    assert [f["type"] for f in frames] == [
        "request.created", "request.offered", "request.assigned", "request.in_service", "request.completed",
    ]  # fmt: skip
    assert [f["status"] for f in frames] == ["queued", "offered", "assigned", "in_service", "completed"]
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


def test_decline_then_expiry_escalates_then_manual_assign(platform: Platform) -> None:
    c = Client(platform.base)
    w = _setup(c, providers=2)
    ws = EventListener(f"ws://127.0.0.1:{platform.port}/ws/events?token={c.token(w['operator'])}").start()
    try:
        req = c.ok(
            "POST",
            "/api/requests",
            w["operator"],
            202,
            json={"elder_id": w["elder"]["id"], "kind": "home_care"},
        )
        (p0, u0), (p1, u1) = w["providers"]
        first = _pending_offer(c, u0)  # the nearer one
        c.ok("POST", f"/api/offers/{first['id']}/decline", u0, json={"reason": "人手不足"})
        second = _pending_offer(c, u1)
        assert second["request_id"] == req["id"]
        # Nobody answers the second offer: RQ's scheduler expires it, nobody is left: escalated.
        wait_for(
            lambda: c.ok("GET", f"/api/requests/{req['id']}", w["operator"])["status"] == "escalated",
            timeout=20,
            what="expiry and escalation",
        )
        done = c.ok(
            "POST", f"/api/requests/{req['id']}/assign", w["operator"], json={"provider_id": p1["id"]}
        )
        assert done["status"] == "assigned"
        wait_for(lambda: len(ws.of(req["id"])) >= 7, timeout=10, what="seven events on the websocket")
    finally:
        ws.close()
    frames = ws.of(req["id"])
    assert [f["type"] for f in frames] == [
        "request.created", "request.offered", "request.declined", "request.offered",
        "request.expired", "request.escalated", "request.assigned",
    ]  # fmt: skip
    assert [f["status"] for f in frames] == [
        "queued", "offered", "queued", "offered", "queued", "escalated", "assigned",
    ]  # fmt: skip
    assert frames[5]["data"]["reason"] == "all_declined"
    assert frames[-1]["data"]["manual"] is True
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs)
