"""The family's view: only linked elders, a plain timeline, the visit summary only where the
elder consented (in the API; the websocket never carries one), asking for a service, rating."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from dispatch.core.audit import AuditEntry
from dispatch.core.db import session_scope
from dispatch.visits import service as visit_service
from dispatch.visits.models import Feedback
from tests.helpers import Api, drain_jobs
from tests.visits.test_evv import Clock
from tests.visits.world import HOME, World, build

SUMMARY = "协助洗澡，更换床单；血压偏高，已提醒服药"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(visit_service, "utcnow", c)
    yield c


@pytest.fixture
def w(api: Api) -> World:
    return build(api)


def _served(w: World, clock: Clock) -> int:
    job = w.job()
    w.api.ok("POST", f"/api/requests/{job}/on-the-way", w.provider_user, json={"eta_minutes": 15})
    w.api.ok("POST", f"/api/requests/{job}/check-in", w.provider_user, json=HOME)
    clock.advance(minutes=45)
    w.api.ok("POST", f"/api/requests/{job}/check-out", w.provider_user, json={**HOME, "summary": SUMMARY})
    return job


def _read(w: World, user: str, request_id: int) -> dict[str, Any]:
    return w.api.ok("GET", f"/api/family/requests/{request_id}", user)  # type: ignore[no-any-return]


def test_timeline_of_a_served_request(w: World, clock: Clock) -> None:
    job = _served(w, clock)
    read = _read(w, w.daughter, job)
    assert read["status"] == "completed" and read["provider_name"] == w.provider["name"]
    assert read["caregiver_name"] == "王*"
    assert [s["step"] for s in read["steps"]] == [
        "requested",
        "accepted",
        "on_the_way",
        "arrived",
        "finished",
    ]
    assert read["steps"][1]["detail"] == w.provider["name"] and read["steps"][2]["detail"] == "15"
    times = [s["at"] for s in read["steps"]]
    assert times == sorted(times)
    assert read["outcome"] == "completed" and read["can_rate"] is True and read["rating"] is None


def test_offered_step_through_the_matcher(w: World) -> None:
    rid = w.request("day_care")["id"]
    drain_jobs()
    assert [s["step"] for s in _read(w, w.son, rid)["steps"]] == ["requested", "offered"]


def test_summary_only_where_the_elder_consented(w: World, clock: Clock) -> None:
    job = _served(w, clock)
    with_notes, status_only = _read(w, w.daughter, job), _read(w, w.son, job)
    assert with_notes["summary"] == SUMMARY and with_notes["summary_withheld"] is False
    assert status_only["summary"] is None and status_only["summary_withheld"] is True
    assert status_only["status"] == "completed" and status_only["steps"] == with_notes["steps"]
    overview = w.api.ok("GET", "/api/family/overview", w.son)
    assert SUMMARY not in str(overview) and SUMMARY not in str(w.api.ok("GET", "/api/family/requests", w.son))
    assert overview["elders"] == [
        {
            "id": w.elder["id"],
            "name": w.elder["name"],
            "township": "静海镇",
            "relation": "",
            "consent": "status",
        }
    ]
    with session_scope(write=False) as session:
        reads = session.exec(select(AuditEntry).where(AuditEntry.what == "family view")).all()
    assert reads and {(a.elder_id, a.actor_role) for a in reads} == {(w.elder["id"], "family")}

    # The elder changes their mind: the operator records it, and it is audited.
    link = f"/api/elders/{w.elder['id']}/family"
    son_id = next(f["user_id"] for f in w.api.ok("GET", f"/api/elders/{w.elder['id']}", w.operator)["family"]
                  if f["username"] == w.son)  # fmt: skip
    member = w.api.ok(
        "PATCH", f"{link}/{son_id}", w.operator, json={"consent": "status_and_notes", "relation": "儿子"}
    )
    assert member["consent"] == "status_and_notes" and member["relation"] == "儿子"
    assert _read(w, w.son, job)["summary"] == SUMMARY
    with session_scope(write=False) as session:
        (entry,) = session.exec(select(AuditEntry).where(AuditEntry.action == "family_consent")).all()
    assert entry.elder_id == w.elder["id"] and "consent=status_and_notes" in entry.what
    for user, status in ((w.provider_user, 403), (w.son, 403)):
        assert w.api.call("PATCH", f"{link}/{son_id}", user, json={"consent": "status"}).status_code == status
    assert w.api.call("PATCH", f"{link}/999999", w.operator, json={"consent": "status"}).status_code == 404
    assert w.api.call("PATCH", f"{link}/{son_id}", w.operator, json={"consent": None}).status_code == 422
    assert w.api.call("PATCH", f"{link}/{son_id}", w.operator, json={"consent": "all"}).status_code == 422


def test_care_notes_follow_the_same_consent(w: World) -> None:
    assert w.api.ok("GET", f"/api/elders/{w.elder['id']}", w.daughter)["notes"]
    assert w.api.ok("GET", f"/api/elders/{w.elder['id']}", w.son)["notes"] is None


def test_a_visit_that_did_not_happen(w: World) -> None:
    job = w.job()
    w.api.ok("POST", f"/api/requests/{job}/check-out", w.provider_user, json={**HOME, "outcome": "not_home"})
    read = _read(w, w.son, job)
    assert read["status"] == "cancelled" and read["outcome"] == "not_home" and read["can_rate"] is False
    assert read["steps"][-1] == {"step": "not_served", "at": read["steps"][-1]["at"], "detail": "not_home"}
    listed = w.api.ok("GET", f"/api/family/requests?elder_id={w.elder['id']}", w.son)
    follow_up = listed[0]
    assert (
        follow_up["welfare"] is True and follow_up["kind"] == "visit" and follow_up["status"] == "escalated"
    )
    assert [s["step"] for s in follow_up["steps"]] == ["requested", "escalated"]


def test_rating_feeds_the_providers_record_once(w: World, clock: Clock) -> None:
    job = _served(w, clock)
    w.api.ok(
        "POST", f"/api/requests/{job}/feedback", w.daughter, 201, json={"rating": 5, "comment": "很细心"}
    )
    with session_scope(write=False) as session:
        (row,) = session.exec(select(Feedback)).all()
    assert (row.provider_id, row.rating, row.comment) == (w.provider["id"], 5, "很细心")
    assert _read(w, w.son, job)["rating"] == 5 and _read(w, w.son, job)["can_rate"] is False
    again = w.api.call("POST", f"/api/requests/{job}/feedback", w.son, json={"rating": 1})
    assert again.status_code == 409
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": 3, "comment": "x" * 501}):
        assert w.api.call("POST", f"/api/requests/{job}/feedback", w.son, json=bad).status_code == 422
    assert (
        w.api.call("POST", f"/api/requests/{job}/feedback", w.outsider, json={"rating": 1}).status_code == 404
    )


def test_asking_for_a_service_enters_the_same_pipeline(w: World) -> None:
    body = {"elder_id": w.elder["id"], "kind": "meal", "details": {"slot": "lunch", "delivery": False}}
    created = w.api.ok(
        "POST", "/api/requests", w.daughter, 202, json=body, headers={"Idempotency-Key": "fam-1"}
    )
    again = w.api.call("POST", "/api/requests", w.daughter, json=body, headers={"Idempotency-Key": "fam-1"})
    assert again.status_code == 200 and again.json()["id"] == created["id"]
    assert created["channel"] == "app" and created["status"] == "queued"
    drain_jobs()
    read = _read(w, w.daughter, created["id"])
    assert read["status"] == "offered" and read["slot"] == "lunch" and read["delivery"] is False
    offers = w.api.ok("GET", "/api/field/offers", w.canteen_user)
    assert [o["request_id"] for o in offers] == [created["id"]]
    overview = w.api.ok("GET", "/api/family/overview", w.daughter)
    assert overview["requests"][0]["id"] == created["id"]
    # Only for linked elders.
    stranger = {**body, "elder_id": w.stranger["id"]}
    assert w.api.call("POST", "/api/requests", w.daughter, json=stranger).status_code == 404


def test_only_family_accounts_use_the_family_api(w: World) -> None:
    for user in (w.operator, w.provider_user, w.manager):
        assert w.api.call("GET", "/api/family/overview", user).status_code == 403
