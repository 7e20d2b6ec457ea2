"""Scoping, each tried and refused: a provider never sees another provider's offers, jobs or
elders, and a family never an unlinked elder, through the API and through the websocket. And the
frames a family receives never carry a visit's summary or the elder's notes, whatever the consent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from dispatch.core.db import session_scope
from dispatch.core.events import Event
from dispatch.visits import service as visit_service
from tests.helpers import Api, drain_jobs
from tests.visits.test_evv import Clock
from tests.visits.world import HOME, NOTES, World, build

SUMMARY = "协助洗澡；血压偏高，已提醒服药"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(visit_service, "utcnow", c)
    yield c


@pytest.fixture
def w(api: Api) -> World:
    return build(api)


def _frames_until(client: TestClient, token: str, last_request: int) -> list[dict[str, Any]]:
    """Every frame the account's websocket replays, up to the first of `last_request` (a sentinel
    written after everything else: whatever the socket would leak comes before it)."""
    frames = []
    with client.websocket_connect(f"/ws/events?token={token}&since=0") as ws:
        while True:
            frame = json.loads(ws.receive_text())
            frames.append(frame)
            if frame["request_id"] == last_request:
                return frames


def _served(w: World, clock: Clock) -> int:
    job = w.job()
    w.api.ok("POST", f"/api/requests/{job}/check-in", w.provider_user, json=HOME)
    clock.advance(minutes=40)
    w.api.ok("POST", f"/api/requests/{job}/check-out", w.provider_user, json={**HOME, "summary": SUMMARY})
    return job


def test_a_provider_never_reaches_another_providers_work(w: World, client: TestClient, clock: Clock) -> None:
    w.api.ok("PATCH", f"/api/providers/{w.other_provider['id']}", w.manager, json={"active": False})
    offered = w.request("home_care")["id"]
    drain_jobs()
    served = _served(w, clock)
    open_job = w.job()
    (offer,) = [
        o for o in w.api.ok("GET", "/api/field/offers", w.provider_user) if o["request_id"] == offered
    ]
    b = w.other_user
    assert w.api.ok("GET", "/api/field/offers", b) == [] and w.api.ok("GET", "/api/offers", b) == []
    assert w.api.ok("GET", "/api/field/today", b)["jobs"] == []
    assert w.api.ok("GET", "/api/visits", b) == [] and w.api.ok("GET", "/api/requests", b) == []
    refused = [
        ("POST", f"/api/offers/{offer['id']}/accept", None),
        ("POST", f"/api/offers/{offer['id']}/decline", {"reason": "x"}),
        ("GET", f"/api/requests/{offered}", None),
        ("GET", f"/api/requests/{served}", None),
        ("GET", f"/api/requests/{served}/visit", None),
        ("POST", f"/api/requests/{open_job}/check-in", HOME),
        ("POST", f"/api/requests/{open_job}/check-out", {**HOME, "outcome": "not_home"}),
        ("POST", f"/api/requests/{open_job}/on-the-way", {}),
        ("POST", f"/api/field/jobs/{open_job}/phone", None),
        ("GET", f"/api/elders/{w.elder['id']}", None),
    ]
    for method, path, body in refused:
        r = w.api.call(method, path, b, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
    assert w.api.call("GET", "/api/elders", b, params={"phone": w.elder["phone"]}).status_code == 403
    # Nothing moved.
    assert w.api.ok("GET", f"/api/requests/{open_job}", w.operator)["status"] == "assigned"
    assert w.api.ok("GET", f"/api/requests/{offered}", w.operator)["status"] == "offered"

    # The websocket: B's own sentinel job is the first thing B ever hears of.
    w.api.ok("PATCH", f"/api/providers/{w.other_provider['id']}", w.manager, json={"active": True})
    sentinel = w.request("home_care")["id"]
    w.assign(sentinel, provider=w.other_provider)
    frames = _frames_until(client, w.api.login(b), sentinel)
    assert {f["request_id"] for f in frames} == {sentinel}
    a_frames = _frames_until(client, w.api.login(w.provider_user), open_job)
    assert {offered, served, open_job} <= {f["request_id"] for f in a_frames}
    assert sentinel not in {f["request_id"] for f in a_frames}


def test_a_family_never_reaches_an_unlinked_elder(w: World, client: TestClient, clock: Clock) -> None:
    served = _served(w, clock)
    visit_id = w.api.ok("GET", f"/api/requests/{served}/visit", w.operator)["id"]
    x = w.outsider  # linked to the stranger only
    assert w.api.ok("GET", "/api/family/requests", x) == []
    overview = w.api.ok("GET", "/api/family/overview", x)
    assert [e["id"] for e in overview["elders"]] == [w.stranger["id"]] and overview["requests"] == []
    assert w.api.ok("GET", "/api/requests", x) == []
    assert [e["id"] for e in w.api.ok("GET", "/api/elders", x)] == [w.stranger["id"]]
    refused = [
        ("GET", f"/api/family/requests/{served}", None, 404),
        ("GET", f"/api/family/requests?elder_id={w.elder['id']}", None, 404),
        ("GET", f"/api/requests/{served}", None, 404),
        ("GET", f"/api/elders/{w.elder['id']}", None, 404),
        ("POST", f"/api/requests/{served}/feedback", {"rating": 1}, 404),
        ("POST", f"/api/requests/{served}/cancel", {}, 404),
        ("POST", "/api/requests", {"elder_id": w.elder["id"], "kind": "meal"}, 404),
        ("GET", f"/api/visits/{visit_id}", None, 403),
        ("GET", f"/api/requests/{served}/visit", None, 403),
    ]
    for method, path, body, status in refused:
        r = w.api.call(method, path, x, json=body)
        assert r.status_code == status, (method, path, r.status_code)

    sentinel = w.request("visit", elder=w.stranger)["id"]
    frames = _frames_until(client, w.api.login(x), sentinel)
    assert {f["request_id"] for f in frames} == {sentinel}


def test_family_frames_carry_no_summary_or_notes_whatever_the_consent(
    w: World, client: TestClient, clock: Clock
) -> None:
    served = _served(w, clock)
    failed = w.job()
    w.api.ok(
        "POST", f"/api/requests/{failed}/check-out", w.provider_user,
        json={**HOME, "outcome": "in_hospital", "summary": "邻居说老人昨晚被送往医院"},
    )  # fmt: skip
    sentinel = w.job()
    with session_scope(write=False) as session:
        expected = session.exec(
            select(Event.seq).where(
                Event.elder_id == w.elder["id"], col(Event.seq) <= _first(session, sentinel)
            )
        ).all()
    for user in (w.daughter, w.son):
        frames = _frames_until(client, w.api.login(user), sentinel)
        assert [f["seq"] for f in frames] == list(expected)  # every step of the elder's requests, in order
        text = json.dumps(frames, ensure_ascii=False)
        assert SUMMARY not in text and "邻居" not in text and NOTES not in text
        types = [f["type"] for f in frames if f["request_id"] == served]
        assert types[-2:] == ["request.in_service", "request.completed"]
    # The consented relative reads the summary from the API, the other does not.
    assert w.api.ok("GET", f"/api/family/requests/{served}", w.daughter)["summary"] == SUMMARY
    assert w.api.ok("GET", f"/api/family/requests/{served}", w.son)["summary"] is None


def _first(session: Any, request_id: int) -> int:
    return min(session.exec(select(Event.seq).where(Event.request_id == request_id)).all())
