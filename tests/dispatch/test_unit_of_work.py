"""The request's unit of work: it commits before the answer leaves, and many concurrent
writers cannot stall the API (both found by bench/load.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session, func, select

from dispatch.app import create_app
from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.core.hotpaths import HotPathsApp
from dispatch.orders.models import ServiceRequest
from tests.helpers import ELDER, Api, make_user
from tests.processes import running_platform


@pytest.mark.parametrize("hot_paths", [True, False], ids=["short way", "FastAPI"])
def test_the_commit_happens_before_the_answer_is_sent(
    monkeypatch: pytest.MonkeyPatch, hot_paths: bool
) -> None:
    """A client that got 202 may rely on the request being stored: the transaction commits
    before the response starts, not after it was sent (both ways in: core/hotpaths.py)."""
    order: list[str] = []
    original = HotPathsApp.__call__

    async def recording(self: HotPathsApp, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def spy(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                order.append("response")
            await send(message)

        await original(self, scope, receive, spy)

    monkeypatch.setattr(HotPathsApp, "__call__", recording)
    with TestClient(create_app(hot_paths=hot_paths)) as client:
        api = Api(client)
        operator = make_user(Role.OPERATOR)
        elder = api.ok("POST", "/api/elders", operator, 201, json=ELDER)

        def committed(_session: Session) -> None:
            order.append("commit")

        order.clear()
        event.listen(Session, "after_commit", committed)
        try:
            api.ok("POST", "/api/requests", operator, 202, json={"elder_id": elder["id"], "kind": "visit"})
        finally:
            event.remove(Session, "after_commit", committed)
    assert "commit" in order and order.index("commit") < order.index("response"), order


@pytest.mark.e2e
def test_many_concurrent_writers_do_not_stall_the_api(env: dict[str, str], tmp_path: Path) -> None:
    """More concurrent writes than the API has threads: each one is answered, none waits for
    SQLite's busy timeout (before the write gate, all 120 hung for 30 s and most got a 500)."""
    operator = make_user(Role.OPERATOR, password="password-123")
    with running_platform(env, tmp_path) as platform:
        platform.start_api()
        token = httpx.post(
            f"{platform.base}/api/auth/token", data={"username": operator, "password": "password-123"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        elder = httpx.post(f"{platform.base}/api/elders", json=ELDER, headers=headers).json()

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=120)
            async with httpx.AsyncClient(base_url=platform.base, timeout=60, limits=limits) as client:
                body = {"elder_id": elder["id"], "kind": "visit"}
                answers = await asyncio.gather(
                    *(client.post("/api/requests", json=body, headers=headers) for _ in range(120))
                )
            return [a.status_code for a in answers]

        statuses = asyncio.run(burst())
    assert statuses == [202] * 120, {s: statuses.count(s) for s in set(statuses)}
    with session_scope(write=False) as session:
        assert session.scalar(select(func.count()).select_from(ServiceRequest)) == 120
