"""W3: the websocket lets nobody in who should not be: no token, a garbage, expired, foreign-key
or disabled-account token, a foreign `Origin`, and a relative (or provider) asking for an elder
outside its scope (`elder_id=`) are all closed with 1008 before a single frame; the allowed
cases get exactly their own events."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from starlette.websockets import WebSocketDisconnect

from dispatch.core.auth import TOKEN_ALGORITHM, Role, User
from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from tests.helpers import ELDER, Api, make_user


def _refused(client: TestClient, url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with client.websocket_connect(url, headers=headers or {}) as ws:
            ws.receive_text()
    except WebSocketDisconnect as exc:
        return exc.code
    raise AssertionError(f"{url} was accepted")


def _token(user_id: int, *, key: str | None = None, expired: bool = False) -> str:
    now = utcnow()
    exp = now - timedelta(minutes=1) if expired else now + timedelta(hours=1)
    claims = {
        "sub": str(user_id),
        "role": "operator",
        "iat": int(now.timestamp()),
        "exp": int(exp.timestamp()),
    }
    return jwt.encode(claims, key or get_settings().signing_key(), algorithm=TOKEN_ALGORITHM)


def _user_id(username: str) -> int:
    with session_scope(write=False) as session:
        user = session.exec(select(User).where(User.username == username)).one()
        assert user.id is not None
        return user.id


def test_bad_tokens_are_refused(api: Api, client: TestClient) -> None:
    operator = make_user(Role.OPERATOR)
    uid = _user_id(operator)
    assert _token(uid) != _token(uid, expired=True)
    with client.websocket_connect(f"/ws/events?token={_token(uid)}"):  # the control: a good one
        pass
    disabled = make_user(Role.OPERATOR)
    disabled_token = api.login(disabled)
    with session_scope() as session:
        row = session.exec(select(User).where(User.username == disabled)).one()
        row.active = False
        session.add(row)
    for url in (
        "/ws/events",
        "/ws/events?token=",
        "/ws/events?token=garbage",
        f"/ws/events?token={_token(uid, expired=True)}",
        f"/ws/events?token={_token(uid, key='another-deployments-secret-key-0123456789')}",
        f"/ws/events?token={_token(987654)}",  # an account that does not exist
        f"/ws/events?token={disabled_token}",
        # Signed with the right key but without an expiry: it would be valid forever.
        f"/ws/events?token={jwt.encode({'sub': str(uid)}, get_settings().signing_key(), algorithm='HS256')}",
    ):
        assert _refused(client, url) == 1008, url


def test_none_algorithm_tokens_are_refused(client: TestClient) -> None:
    """An unsigned token ("alg": "none") naming a real account is not a token."""
    uid = _user_id(make_user(Role.ADMIN))
    unsigned = jwt.encode({"sub": str(uid), "exp": 4_000_000_000}, key=None, algorithm="none")  # type: ignore[arg-type]
    assert _refused(client, f"/ws/events?token={unsigned}") == 1008


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://testserver.evil.example", "null", "http://127.0.0.1:9"]
)
def test_foreign_origins_are_refused(api: Api, client: TestClient, origin: str) -> None:
    token = api.login(make_user(Role.OPERATOR))
    assert _refused(client, f"/ws/events?token={token}", {"origin": origin}) == 1008


def test_own_and_allowed_origins_are_accepted(
    api: Api, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = api.login(make_user(Role.OPERATOR))
    with client.websocket_connect(f"/ws/events?token={token}", headers={"origin": "http://testserver"}):
        pass
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://console.jinghai.example")
    get_settings.cache_clear()
    with client.websocket_connect(
        f"/ws/events?token={token}", headers={"origin": "https://console.jinghai.example"}
    ):
        pass


def _frames(ws: Any, n: int) -> list[dict[str, Any]]:
    return [json.loads(ws.receive_text()) for _ in range(n)]


def test_a_relative_may_follow_only_a_linked_elder(api: Api, client: TestClient) -> None:
    w = api.world()
    family = make_user(Role.FAMILY)
    mine = w["elder"]["id"]
    api.ok("POST", f"/api/elders/{mine}/family", w["operator"], 201, json={"username": family})
    other = api.ok("POST", "/api/elders", w["operator"], 201, json={**ELDER, "phone": "+8613800000777"})["id"]
    for elder_id in (mine, other):
        api.ok("POST", "/api/requests", w["operator"], 202, json={"elder_id": elder_id, "kind": "visit"})
    token = api.login(family)
    for url in (f"/ws/events?token={token}&elder_id={other}", f"/ws/events?token={token}&elder_id=987654"):
        assert _refused(client, url) == 1008, url
    provider_token = api.login(w["provider_user"])
    assert _refused(client, f"/ws/events?token={provider_token}&elder_id={mine}") == 1008
    with client.websocket_connect(f"/ws/events?token={token}&elder_id={mine}") as ws:
        (created,) = _frames(ws, 1)
        assert created["type"] == "request.created"
    # Staff may follow any one elder, and then get only that elder's events.
    with client.websocket_connect(f"/ws/events?token={api.login(w['operator'])}&elder_id={other}") as ws:
        api.ok("POST", "/api/requests", w["operator"], 202, json={"elder_id": mine, "kind": "visit"})
        third = api.ok("POST", "/api/requests", w["operator"], 202, json={"elder_id": other, "kind": "meal"})
        first, second = _frames(ws, 2)
        assert first["type"] == second["type"] == "request.created"
        assert second["request_id"] == third["id"]  # the request for `mine` in between never came
