"""Test helpers: an API client that signs in as anyone, real RQ workers in burst mode,
and waiting on a condition with a deadline (never sleeping and hoping)."""

from __future__ import annotations

import base64
import itertools
import os
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from rq import SimpleWorker

from dispatch.accounts import service as account_service
from dispatch.accounts.schemas import UserCreate
from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.core.jobs import QueueName
from dispatch.core.redis import get_queue, get_redis, serializer_for

T = TypeVar("T")
_counter = itertools.count(1)

ELDER = {
    "name": "张秀英",
    "phone": "+8613800000001",
    "township": "静海镇",
    "address": "静海镇胜利路12号",
    "lat": 38.947,
    "lon": 116.974,
    "care_level": "partial",
    "lives_alone": True,
    "assistance": "dibao",
    "birth_date": "1941-03-02",
}

HOME_CARE = {
    "name": "静海康乐居家养老服务社",
    "kind": "home_care",
    "township": "静海镇",
    "address": "静海镇和平路8号",
    "lat": 38.95,
    "lon": 116.97,
    "phone": "+8613600000001",
    "capacity": 5,
    "service_radius_km": 10.0,
    "skills": ["bathing", "cleaning", "nursing", "meal_delivery"],
    "hours": {"open": "00:00", "close": "24:00"},
}


def wait_for(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll until `condition()` is truthy; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def never_reading_websocket(base: str, token: str) -> socket.socket:
    """A console that opens the websocket (a small receive buffer) and then never reads a byte."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (f"GET /ws/events?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    )  # fmt: skip
    assert b"101" in sock.recv(12)
    return sock


def make_user(role: Role, username: str | None = None, password: str = "password-123", **extra: Any) -> str:
    """Create an account through the service layer; returns its username."""
    username = username or f"{role.value}{next(_counter)}"
    with session_scope() as session:
        account_service.create_user(
            session=session, user_in=UserCreate(username=username, password=password, role=role, **extra)
        )
    return username


class BurstWorker(SimpleWorker):
    """RQ's SimpleWorker without its command channel: a burst worker of a test takes no remote
    commands, and stopping the channel's pub/sub thread could hang up to 60 s (its sleep time)
    when the subscription's confirmation never came, twice enough to let a 90 s offer expire
    before the test got to it (seen under load in test_sms and test_welfare_guarantee)."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def drain_jobs(rounds: int = 30) -> int:
    """Run real RQ workers (burst mode, with RQ's scheduler) on every queue until none has work.
    Scheduled jobs are only moved once due, so expiry still waits for its time."""
    conn = get_redis()
    performed = 0
    for _ in range(rounds):
        worked = False
        for name in QueueName:
            worker = BurstWorker(
                [get_queue(name.value, conn)], connection=conn, serializer=serializer_for(name.value)
            )
            if worker.work(burst=True, with_scheduler=True, logging_level="WARNING"):
                worked = True
                performed += 1
        if not worked:
            return performed
    return performed


class Api:
    """The API as a client sees it, with a token per account."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def login(self, username: str, password: str = "password-123") -> str:
        response = self.client.post("/api/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        self.tokens[username] = token
        return token

    def as_(self, username: str) -> dict[str, str]:
        token = self.tokens.get(username) or self.login(username)
        return {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, user: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**kwargs.pop("headers", {}), **(self.as_(user) if user else {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, user: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, user, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    # A small world: an operator, a home-care provider with an account, an elder.
    def world(self) -> dict[str, Any]:
        admin = make_user(Role.ADMIN)
        operator = make_user(Role.OPERATOR)
        manager = make_user(Role.MANAGER)
        provider = self.ok("POST", "/api/providers", manager, 201, json=HOME_CARE)
        provider_user = make_user(Role.PROVIDER, provider_id=provider["id"])
        elder = self.ok("POST", "/api/elders", operator, 201, json=ELDER)
        return {
            "admin": admin,
            "operator": operator,
            "manager": manager,
            "provider": provider,
            "provider_user": provider_user,
            "elder": elder,
        }
