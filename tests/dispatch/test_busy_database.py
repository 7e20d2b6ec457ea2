"""A database that is busy (a writer holding its locks past DB_LOCK_TIMEOUT_SECONDS) answers
503 with Retry-After and a reason, on the hot paths and the ordinary routes alike, and stores
nothing; once it is free the same calls succeed. Before stop 20: a 500 on SQLite after 30 s,
and on PostgreSQL a wait with no end."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy import func, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import select

from dispatch.core import db as core_db
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.errors import database_unavailable
from dispatch.core.events import lock_event_order
from dispatch.orders.models import ServiceRequest
from tests.helpers import Api

LOCK_WAIT = 0.5


@pytest.fixture(autouse=True)
def _short_lock_waits(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_LOCK_TIMEOUT_SECONDS", str(LOCK_WAIT))
    get_settings.cache_clear()
    core_db.dispose_engines()


@contextmanager
def _database_held() -> Iterator[None]:
    """A writer that holds the database: SQLite's one write lock (from its first statement), on
    PostgreSQL the event-order lock every change of a request takes first."""
    with session_scope() as session:
        session.execute(text("SELECT 1"))
        lock_event_order(session)
        yield


def _requests() -> int:
    with session_scope(write=False) as session:
        return int(session.exec(select(func.count()).select_from(ServiceRequest)).one())


def _assert_busy(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert body["error"] == "Unavailable" and "busy or unreachable" in body["detail"]


def test_a_new_request_while_the_database_is_held_is_503_and_stored_once_when_retried(api: Api) -> None:
    w = api.world()
    api.as_(w["operator"])  # signed in before the database is held
    body = {"elder_id": w["elder"]["id"], "kind": "meal", "note": "午饭送到家"}
    headers = {"Idempotency-Key": "busy-0001"}
    before = _requests()
    with _database_held():
        started = time.monotonic()
        response = api.call("POST", "/api/requests", w["operator"], json=body, headers=headers)
        waited = time.monotonic() - started
    _assert_busy(response)
    assert waited >= LOCK_WAIT  # it waited its bounded time for the lock, then gave up
    assert _requests() == before  # nothing stored
    created = api.ok("POST", "/api/requests", w["operator"], 202, json=body, headers=headers)
    again = api.ok("POST", "/api/requests", w["operator"], 200, json=body, headers=headers)  # a replay
    assert created["id"] == again["id"] and _requests() == before + 1


def test_a_cancel_while_the_database_is_held_is_503_and_changes_nothing(api: Api) -> None:
    w = api.world()
    body = {"elder_id": w["elder"]["id"], "kind": "visit"}
    request_id = api.ok("POST", "/api/requests", w["operator"], 202, json=body)["id"]
    with _database_held():
        response = api.call(
            "POST", f"/api/requests/{request_id}/cancel", w["operator"], json={"reason": "不需要了"}
        )
    _assert_busy(response)
    assert api.ok("GET", f"/api/requests/{request_id}", w["operator"])["status"] == "queued"
    cancelled = api.ok(
        "POST", f"/api/requests/{request_id}/cancel", w["operator"], json={"reason": "不需要了"}
    )
    assert cancelled["status"] == "cancelled"


def test_only_a_busy_or_unreachable_database_is_a_503_not_a_wrong_statement() -> None:
    def wrapped(orig: Exception) -> OperationalError:
        return OperationalError("SELECT 1", {}, orig)

    busy = [
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("database is locked (waited 30 s to write)"),  # core/writelock.py
        wrapped(sqlite3.OperationalError("database is locked")),
        wrapped(pg.LockNotAvailable("canceling statement due to lock timeout")),
        wrapped(pg.DeadlockDetected("deadlock detected")),
        wrapped(pg.AdminShutdown("terminating connection due to administrator command")),
        wrapped(psycopg.OperationalError("connection refused")),  # no SQLSTATE: never reached
        PoolTimeout("QueuePool limit of size 10 overflow 20 reached"),
    ]
    wrong = [
        sqlite3.OperationalError("no such table: elder"),
        wrapped(sqlite3.OperationalError('near "SELEC": syntax error')),
        ProgrammingError("SELECT x", {}, pg.UndefinedColumn("column x does not exist")),
        wrapped(pg.DiskFull("could not extend file")),
        RuntimeError("database is locked"),  # not the database's own error
    ]
    assert [database_unavailable(e) for e in busy] == [True] * len(busy)
    assert [database_unavailable(e) for e in wrong] == [False] * len(wrong)
