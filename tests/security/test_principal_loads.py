"""Callers' accounts read in batches (core/auth.py): many callers not yet remembered, arriving
together, are read in fewer queries than callers, and each one is still exactly who its own
token says (no answer given to the wrong caller), disabled and forged tokens refused 401."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlmodel import select

from dispatch.core import auth
from dispatch.core.auth import Role, User
from dispatch.core.db import session_scope
from tests.helpers import Api, make_user


def test_callers_read_together_each_get_their_own_account(
    client: Any, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    roles = [Role.OPERATOR, Role.FAMILY, Role.MANAGER, Role.ADMIN]
    users = [make_user(roles[n % len(roles)]) for n in range(40)]
    tokens = {u: api.login(u) for u in users}
    disabled = users[::7]
    with session_scope() as session:
        for row in session.exec(select(User).where(User.username.in_(disabled))):  # type: ignore[attr-defined]
            row.active = False
    auth.forget_principals()
    reads: list[int] = []
    real = auth._load_principals

    def counted(batch: list[str]) -> list[Any]:
        reads.append(len(batch))
        return real(batch)

    monkeypatch.setattr(auth, "_load_principals", counted)
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.forged-signature"
    calls = [(u, tokens[u]) for u in users] * 2 + [("forged", forged)]

    async def call_all() -> list[tuple[str, httpx.Response]]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answers = await asyncio.gather(
                *(http.get("/api/me", headers={"Authorization": f"Bearer {t}"}) for _, t in calls)
            )
        return [(who, answer) for (who, _), answer in zip(calls, answers, strict=True)]

    for who, answer in asyncio.run(call_all()):
        if who in disabled or who == "forged":
            assert answer.status_code == 401, (who, answer.text)
        else:
            assert answer.status_code == 200, (who, answer.text)
            assert answer.json()["username"] == who  # its own account, never another caller's
    assert len(reads) < len(users)  # read together: fewer reads than callers
    assert max(reads) > 1
