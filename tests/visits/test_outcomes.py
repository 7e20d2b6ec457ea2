"""A visit that could not happen (not home, refused, in hospital) is never completed: the request
is cancelled with the outcome in its event, the visit keeps the outcome, and a welfare check goes
to the operators (and a text to the family), once. And "on the way" texts the family once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import col, select

from dispatch.core.db import session_scope
from dispatch.core.events import timeline as events_of
from dispatch.notify.models import Message
from dispatch.visits.models import Departure, Visit
from dispatch.welfare.models import WelfareCheck
from tests.helpers import ELDER, Api
from tests.visits.world import FAR, HOME, NOTES, SITE, World, build, day_care_day


@pytest.fixture
def w(api: Api) -> World:
    return build(api)


def _messages(purpose: str) -> list[Message]:
    with session_scope(write=False) as session:
        stmt = select(Message).where(Message.purpose == purpose).order_by(col(Message.id))
        return list(session.exec(stmt).all())


def _welfare(request_id: int) -> list[WelfareCheck]:
    with session_scope(write=False) as session:
        return list(
            session.exec(select(WelfareCheck).where(WelfareCheck.source_request_id == request_id)).all()
        )


def _out(w: World, request_id: int, user: str | None = None, **body: Any) -> dict[str, Any]:
    return w.api.ok("POST", f"/api/requests/{request_id}/check-out", user or w.provider_user, json=body)  # type: ignore[no-any-return]


def test_nobody_home_cancels_keeps_the_outcome_and_raises_one_welfare_check(w: World) -> None:
    job = w.job()
    # At the door of an assigned job, nobody opens: no check-in is needed to record it.
    visit = _out(w, job, **HOME, outcome="not_home", summary="敲门十分钟无人应答")
    assert visit["outcome"] == "not_home" and visit["verified"] is False
    assert visit["check_in_at"] == visit["check_out_at"] and visit["flags"] == []
    read = w.api.ok("GET", f"/api/requests/{job}", w.operator)
    assert read["status"] == "cancelled"
    assert "request.completed" not in [t["type"] for t in read["timeline"]]
    with session_scope(write=False) as session:
        cancelled = [e for e in events_of(session, job) if e.type == "request.cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0].data["reason"] == "visit_failed" and cancelled[0].data["outcome"] == "not_home"
    assert cancelled[0].data["by"] == "provider" and cancelled[0].data["visit_id"] == visit["id"]
    assert "敲门" not in str(cancelled[0].data)  # the caregiver's note is not broadcast

    (check,) = _welfare(job)
    assert check.reason == "failed_visit:not_home" and check.dedupe_key == f"failed-visit:{job}"
    follow_up = w.api.ok("GET", f"/api/requests/{check.request_id}", w.operator)
    assert follow_up["status"] == "escalated" and follow_up["priority"] == "urgent"
    assert follow_up["escalation_reason"] == "welfare_check" and follow_up["elder_id"] == w.elder["id"]
    texts = _messages("welfare")
    assert {m.to_phone for m in texts} == {"+8613900000088", "+8613900000077"}
    assert all("老人不在家" in m.body for m in texts)
    assert all(NOTES not in m.body and ELDER["phone"][3:] not in m.body for m in texts)
    # Not served, so not to be rated, and no "completed" SMS.
    r = w.api.call("POST", f"/api/requests/{job}/feedback", w.daughter, json={"rating": 5})
    assert r.status_code == 409
    assert _messages("completed") == []


@pytest.mark.parametrize(("outcome", "text"), [("refused", "老人拒绝服务"), ("in_hospital", "老人住院")])
def test_outcome_found_during_the_visit(w: World, outcome: str, text: str) -> None:
    job = w.job()
    w.api.ok("POST", f"/api/requests/{job}/check-in", w.provider_user, json=HOME)
    visit = _out(w, job, **FAR, outcome=outcome)
    assert visit["outcome"] == outcome and visit["verified"] is False
    assert visit["flags"] == ["location_mismatch"]  # positions still judged; no too_short for a failed visit
    assert w.api.ok("GET", f"/api/requests/{job}", w.operator)["status"] == "cancelled"
    (check,) = _welfare(job)
    assert check.reason == f"failed_visit:{outcome}"
    assert all(text in m.body for m in _messages("welfare"))


def test_a_repeated_failed_check_out_changes_nothing(w: World) -> None:
    job = w.job()
    _out(w, job, **HOME, outcome="not_home")
    r = w.api.call(
        "POST", f"/api/requests/{job}/check-out", w.provider_user, json={**HOME, "outcome": "not_home"}
    )
    assert r.status_code == 409
    assert len(_welfare(job)) == 1 and len(_messages("welfare")) == 2
    with session_scope(write=False) as session:
        assert len(session.exec(select(Visit).where(Visit.request_id == job)).all()) == 1


def test_day_care_absence_is_told_as_such(w: World) -> None:
    rid = w.request("day_care", **day_care_day())["id"]
    w.assign(rid, provider=w.day_care)
    visit = _out(w, rid, w.day_care_user, **SITE["day_care"], outcome="not_home")
    assert visit["place"] == "provider_site" and visit["flags"] == []
    assert all("老人未到日间照料中心" in m.body for m in _messages("welfare"))
    day = w.api.ok("GET", "/api/field/today", w.day_care_user)
    assert day["attendance"] == {"expected": 0, "arrived": 0, "left": 0, "absent": 1}


def test_completed_visits_still_complete(w: World) -> None:
    job = w.job()
    w.api.ok("POST", f"/api/requests/{job}/check-in", w.provider_user, json=HOME)
    assert _out(w, job, **HOME, outcome="completed")["outcome"] == "completed"
    assert w.api.ok("GET", f"/api/requests/{job}", w.operator)["status"] == "completed"
    assert _welfare(job) == [] and len(_messages("completed")) == 2


# ---- on the way ---------------------------------------------------------------------------


def test_on_the_way_texts_the_family_once(w: World) -> None:
    job = w.job()
    first = w.api.ok("POST", f"/api/requests/{job}/on-the-way", w.provider_user, json={"eta_minutes": 20})
    again = w.api.ok("POST", f"/api/requests/{job}/on-the-way", w.provider_user, json={"eta_minutes": 5})
    assert first == again and first["eta_minutes"] == 20  # the second press answers the first record
    texts = _messages("on_the_way")
    assert {m.to_phone for m in texts} == {"+8613900000088", "+8613900000077"}
    body = texts[0].body
    assert "已出发" in body and "20分钟" in body and "张*英" in body and w.provider["name"] in body
    national = ELDER["phone"].removeprefix("+86")
    assert national not in body and ELDER["address"] not in body and NOTES not in body
    assert not re.search(r"1[3-9]\d{9}", body)  # no phone number of anyone
    with session_scope(write=False) as session:
        assert len(session.exec(select(Departure)).all()) == 1
    # Not a status change: no event, the request stays assigned.
    read = w.api.ok("GET", f"/api/requests/{job}", w.operator)
    assert read["status"] == "assigned" and read["timeline"][-1]["type"] == "request.assigned"


def test_on_the_way_only_for_the_assigned_provider_and_before_arrival(w: World) -> None:
    job = w.job(caregiver=0)
    for user in (w.other_user, w.caregiver_users[1], w.daughter, w.operator):
        r = w.api.call("POST", f"/api/requests/{job}/on-the-way", user, json={})
        assert r.status_code in (403, 404), (user, r.status_code)
    assert w.api.call("POST", f"/api/requests/{job}/on-the-way", w.caregiver_users[0]).status_code == 200
    later = w.job()
    w.api.ok("POST", f"/api/requests/{later}/check-in", w.provider_user, json=HOME)
    assert (
        w.api.call("POST", f"/api/requests/{later}/on-the-way", w.provider_user, json={}).status_code == 409
    )
    r = w.api.call("POST", f"/api/requests/{later}/on-the-way", w.provider_user, json={"eta_minutes": 0})
    assert r.status_code == 422
    assert len(_messages("on_the_way")) == 2  # the one departure, to two relatives
