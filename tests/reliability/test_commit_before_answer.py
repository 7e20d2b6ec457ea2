"""A 202 (or any 2xx) is only sent once its transaction is committed: when the commit fails, the
client gets an error, never a success for a request that is not stored.

FastAPI runs the exit code of a `yield` dependency after the response is sent unless the
dependency is `scope="function"`; the request session (`dispatch.core.db.SessionDep`) commits
in that exit code, so with the default a client was told 202 for a commit that could still fail
(and could read its own write before it was committed, which is what PostgreSQL showed).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import select

from dispatch.core.db import session_scope
from dispatch.orders.models import ServiceRequest
from tests.helpers import Api


class CommitFails(Exception):
    pass


@pytest.fixture
def failing_commits() -> Iterator[list[int]]:
    """While armed (a non-empty list), the next commit of a session that wrote a request fails."""
    armed: list[int] = []

    def before_commit(session: OrmSession) -> None:
        wrote_request = any(isinstance(o, ServiceRequest) for o in session.new)
        if armed and (wrote_request or session.info.get("wrote_request")):
            armed.pop()
            raise CommitFails("injected: the database refused the commit")

    def after_flush(session: OrmSession, _context: object) -> None:
        if any(isinstance(o, ServiceRequest) for o in session.new):
            session.info["wrote_request"] = True

    event.listen(OrmSession, "before_commit", before_commit)
    event.listen(OrmSession, "after_flush", after_flush)
    yield armed
    event.remove(OrmSession, "before_commit", before_commit)
    event.remove(OrmSession, "after_flush", after_flush)


def _stored() -> int:
    with session_scope(write=False) as session:
        return session.exec(select(func.count()).select_from(ServiceRequest)).one()


def test_a_failed_commit_is_never_answered_202(api: Api, failing_commits: list[int]) -> None:
    w = api.world()
    body = {"elder_id": w["elder"]["id"], "kind": "visit"}
    api.ok("POST", "/api/requests", w["operator"], 202, json=body)  # the control: commits fine
    assert _stored() == 1
    client = TestClient(api.client.app, raise_server_exceptions=False)  # type: ignore[attr-defined]
    headers = api.as_(w["operator"])
    for attempt in range(5):
        failing_commits.append(attempt)
        response = client.post("/api/requests", json=body, headers=headers)
        assert response.status_code == 500, (attempt, response.status_code, response.text)
        assert not failing_commits, "the commit was attempted"
        assert _stored() == 1
    assert client.post("/api/requests", json=body, headers=headers).status_code == 202
    assert _stored() == 2
