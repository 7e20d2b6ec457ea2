"""The audit log: every read and change of an elder's record leaves a row (who, which elder,
what, when, from where); only admins read it; the database refuses to change or delete it.

Reads are found from the OpenAPI document: every GET operation is called by every role (with
the ids each may see), and every answer that carries an elder's data — an `elder_id`, the
elder's name (full or masked) — must have added a read row for that elder, by that account.
A new endpoint that shows elder data without auditing it fails here by name.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from dispatch.core.audit import AuditEntry
from dispatch.core.auth import mask_name
from dispatch.core.clock import utcnow
from dispatch.core.db import get_engine, session_scope
from tests.helpers import ELDER, Api, drain_jobs
from tests.hotline.conftest import Twilio
from tests.security.world import ROLES, World, build_world, kind_of, operations

_PARAM = re.compile(r"{(\w+)}")


def _rows_after(last: int) -> list[AuditEntry]:
    with session_scope(write=False) as session:
        return list(session.exec(select(AuditEntry).where(col(AuditEntry.id) > last)).all())


def _last_id() -> int:
    with session_scope(write=False) as session:
        return max(session.exec(select(AuditEntry.id)).all() or [0]) or 0


def _elders_in(body: Any, names: dict[str, int]) -> set[int]:
    """The world's elders an answer carries data of."""
    found: set[int] = set()
    if isinstance(body, dict):
        if isinstance(body.get("elder_id"), int):
            found.add(body["elder_id"])
        for value in body.values():
            found |= _elders_in(value, names)
    elif isinstance(body, list):
        for item in body:
            found |= _elders_in(item, names)
    elif isinstance(body, str) and body in names:
        found.add(names[body])
    return found


def _names(w: World) -> dict[str, int]:
    out = {}
    for name, elder_id in w.ids["elder"].items():
        out[f"长者{name}"] = elder_id
        out[mask_name(f"长者{name}")] = elder_id
    return out


def test_every_answer_with_elder_data_is_audited(client: TestClient, api: Api) -> None:
    w = build_world(api)
    spec = client.get("/openapi.json").json()
    names, missing, audited = _names(w), [], 0
    for method, path, _op in operations(spec):
        if method != "GET" or not path.startswith("/api/") or path.startswith("/api/audit"):
            continue
        key = f"{method} {path}"
        params = _PARAM.findall(path)
        for role in ROLES:
            pools = [sorted(w.in_scope(kind_of(key, p), role)) for p in params]
            if any(not pool for pool in pools):
                continue
            url = path
            for param, pool in zip(params, pools, strict=True):
                url = url.replace("{" + param + "}", str(pool[0]))
            last = _last_id()
            response = w.api.call(method, url, w.users[role])
            if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
                continue
            shown = _elders_in(response.json(), names)
            rows = [r for r in _rows_after(last) if r.action == "read" and r.actor_id == w.ids["user"][role]]
            unaudited = shown - {r.elder_id for r in rows}
            if unaudited:
                missing.append(
                    f"{method} {url} as {role} shows elders {sorted(unaudited)} without an audit row"
                )
            audited += len(shown) > 0
    assert not missing, "\n".join(missing)
    assert audited >= 15, audited  # elders, lookups, requests, offers, messages, by several roles


def test_the_hotline_caller_lookup_is_audited(api: Api, twilio: Twilio) -> None:
    operator = api.world()["operator"]
    elder = api.ok("GET", "/api/elders", operator)[0]
    last = _last_id()
    assert twilio.call("CA" + "7" * 32, ELDER["phone"]).status_code == 200
    rows = _rows_after(last)
    assert [(r.elder_id, r.action, r.what, r.client) for r in rows] == [
        (elder["id"], "read", "hotline caller lookup", "twilio")
    ]
    assert rows[0].actor_role == "operator" and rows[0].actor_id is not None


def test_every_change_names_who_what_and_from_where(api: Api) -> None:
    w = build_world(api)
    e1, r1 = w.id("elder", "E1"), w.id("request", "R1")
    op, provider = w.users["operator"], w.users["providerA"]
    api.ok("PATCH", f"/api/elders/{e1}", op, json={"notes": "糖尿病，低糖饮食"})
    api.ok("POST", f"/api/requests/{r1}/check-in", provider, json={"lat": 38.947, "lon": 116.974})
    api.ok("POST", f"/api/requests/{r1}/check-out", provider, json={"lat": 38.947, "lon": 116.974})
    created = api.ok("POST", "/api/requests", w.users["family1"], 202, json={"elder_id": e1, "kind": "visit"})
    drain_jobs()  # the matcher (no account) offers it
    admin = w.users["admin"]
    rows = api.ok("GET", f"/api/audit?elder_id={e1}&limit=1000", admin)
    by_action: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        assert row["elder_id"] == e1
        by_action.setdefault(row["action"], []).append(row)
    uid = w.ids["user"]
    expected = {
        "create": uid["operator"],
        "link_family": uid["operator"],
        "update": uid["operator"],
        "request.assigned": uid["operator"],  # R1's manual dispatch
        "request.in_service": uid["providerA"],
        "request.completed": uid["providerA"],
    }
    for action, actor in expected.items():
        assert any(r["actor_id"] == actor and r["client"] == "testclient" for r in by_action[action]), action
    assert {r["actor_id"] for r in by_action["request.created"]} >= {uid["operator"], uid["family1"]}
    offered = [r for r in by_action["request.offered"] if f"request {created['id']} " in r["what"] + " "]
    assert offered and offered[0]["actor_role"] == "system" and offered[0]["actor_id"] is None
    update = by_action["update"][0]
    assert update["what"] == "notes"  # which fields changed, never their values
    assert all("糖尿病" not in r["what"] for r in rows)
    # The newest first, each with its time.
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert all(abs(utcnow() - _at(r["at"])) < timedelta(minutes=5) for r in rows)


def _at(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_only_admins_read_the_audit_log_with_filters(api: Api) -> None:
    w = build_world(api)
    for role in ROLES:
        response = w.api.call("GET", "/api/audit", w.users[role])
        assert response.status_code == (200 if role == "admin" else 403), (role, response.text)
    admin = w.users["admin"]
    e2, family2 = w.id("elder", "E2"), w.ids["user"]["family2"]
    api.ok("GET", f"/api/elders/{e2}", w.users["family2"])
    mine = api.ok("GET", f"/api/audit?actor_id={family2}", admin)
    assert mine and all(r["actor_id"] == family2 for r in mine)
    assert {r["elder_id"] for r in mine} == {e2}
    now = utcnow()
    window = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    assert api.ok("GET", "/api/audit", admin, params={**window, "elder_id": e2})
    future = {"from": (now + timedelta(hours=1)).isoformat()}
    assert api.ok("GET", "/api/audit", admin, params=future) == []
    backwards = w.api.call("GET", "/api/audit", admin, params={"from": window["to"], "to": window["from"]})
    assert backwards.status_code == 400 and "after" in backwards.json()["detail"]
    naive = w.api.call("GET", "/api/audit", admin, params={"from": "2026-01-01T00:00:00"})
    assert naive.status_code == 422


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor_id = 1, what = 'rewritten'",
        "UPDATE audit_log SET elder_id = NULL WHERE id = (SELECT MIN(id) FROM audit_log)",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)",
    ],
)
def test_the_database_refuses_to_change_or_delete_audit_rows(api: Api, statement: str) -> None:
    """On the suite's database: SQLite by default, PostgreSQL in the CI's second run."""
    api.world()  # creates an elder: an audit row
    with session_scope(write=False) as session:
        before = [tuple(r) for r in session.execute(text("SELECT * FROM audit_log ORDER BY id")).all()]
    assert before
    engine = get_engine()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    with session_scope(write=False) as session:
        after = [tuple(r) for r in session.execute(text("SELECT * FROM audit_log ORDER BY id")).all()]
    assert after == before


def test_postgresql_also_refuses_truncate(api: Api) -> None:
    engine = get_engine()
    api.world()
    if engine.dialect.name != "postgresql":
        # SQLite has no TRUNCATE; its DELETE without WHERE is refused above.
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
        return
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))


def test_a_fresh_sqlite_database_refuses_too(tmp_path: Any) -> None:
    """Also in the PostgreSQL run of the suite: the SQLite triggers, on a database migrated here."""
    from sqlalchemy import create_engine

    from dispatch.core.db import migrate

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, actor_role, action, what, client) "
                          "VALUES ('2026-01-01 00:00:00', 'admin', 'read', '', '')"))  # fmt: skip
    for statement in ("UPDATE audit_log SET what = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT what FROM audit_log")).scalars().all() == [""]
    engine.dispose()
