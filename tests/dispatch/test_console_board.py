"""Where the console's event replay starts: every request still waiting for someone, however
old, and everything of the recent period; not the platform's whole history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope
from dispatch.core.events import Event
from tests.helpers import Api, drain_jobs


def _post(api: Api, w: dict[str, Any], kind: str = "home_care") -> dict[str, Any]:
    body = {"elder_id": w["elder"]["id"], "kind": kind}
    return api.ok("POST", "/api/requests", w["operator"], 202, json=body)  # type: ignore[no-any-return]


def _first_seq(request_id: int) -> int:
    with session_scope(write=False) as session:
        seqs = session.exec(select(Event.seq).where(Event.request_id == request_id).order_by(col(Event.seq)))
        return int(next(iter(seqs)) or 0)


def test_an_empty_platform_starts_at_the_newest_event(api: Api) -> None:
    w = api.world()
    start = api.ok("GET", "/api/console/board-start", w["operator"])
    assert start["since"] == start["last_seq"] == 0


def test_recent_requests_are_replayed_from_their_creation(api: Api) -> None:
    w = api.world()
    first = _post(api, w)
    _post(api, w)
    drain_jobs()
    start = api.ok("GET", "/api/console/board-start", w["operator"])
    assert start["since"] == _first_seq(first["id"]) - 1
    assert start["last_seq"] > start["since"]


def test_a_day_later_only_what_still_waits_is_replayed(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    w = api.world()
    done = _post(api, w)  # will be assigned: nobody waits for it any more
    waiting = _post(api, w, kind="day_care")  # no day-care center: escalated, waits for an operator
    drain_jobs()
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    tomorrow = utcnow() + timedelta(days=2)
    monkeypatch.setattr("dispatch.console.board.utcnow", lambda: tomorrow)
    start = api.ok("GET", "/api/console/board-start", w["operator"])
    assert start["since"] == _first_seq(waiting["id"]) - 1 > _first_seq(done["id"]) - 1


def test_townships_for_the_console(api: Api) -> None:
    w = api.world()
    townships = api.ok("GET", "/api/console/townships", w["operator"])
    assert len(townships) == 18 and townships[0]["name"] == "静海镇"


def test_only_console_roles(api: Api) -> None:
    w = api.world()
    assert api.call("GET", "/api/console/board-start", w["provider_user"]).status_code == 403
    assert api.call("GET", "/api/console/board-start", w["manager"]).status_code == 403
    assert api.call("GET", "/api/console/board-start", w["admin"]).status_code == 200
