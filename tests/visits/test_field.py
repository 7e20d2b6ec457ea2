"""The provider's day (`/api/field`): offers, today's jobs with only what a job needs, the elder's
phone on demand, a canteen's meal counts and a day-care center's attendance. Scoped to the
provider, and to the caregiver for an account bound to one."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import select

from dispatch.core.audit import AuditEntry
from dispatch.core.db import session_scope
from tests.helpers import ELDER, Api, drain_jobs
from tests.visits.world import HOME, NOTES, SITE, World, build, day_care_day, dinner, lunch


@pytest.fixture
def w(api: Api) -> World:
    return build(api)


def _today(w: World, user: str) -> dict[str, Any]:
    return w.api.ok("GET", "/api/field/today", user)  # type: ignore[no-any-return]


def _job(day: dict[str, Any], request_id: int) -> dict[str, Any]:
    return next(j for j in day["jobs"] if j["request_id"] == request_id)


def test_todays_jobs_carry_what_the_job_needs_and_nothing_more(w: World) -> None:
    later = w.job(window_start=lunch()["window_start"].replace("11:00", "15:00"),
                  window_end=lunch()["window_end"].replace("12:30", "16:00"))  # fmt: skip
    sooner = w.job(note="请带防滑垫", **lunch())
    day = _today(w, w.provider_user)
    assert [j["request_id"] for j in day["jobs"]] == [sooner, later]  # in time order
    assert day["provider"]["name"] == w.provider["name"] and day["caregiver"] is None
    job = _job(day, sooner)
    assert job["status"] == "assigned" and job["place"] == "elder_home" and job["caregiver_name"] == "王芳"
    assert job["elder"] == {
        "name": ELDER["name"], "township": ELDER["township"], "address": ELDER["address"],
        "phone": "138****0001", "lat": ELDER["lat"], "lon": ELDER["lon"],
    }  # fmt: skip
    # The operator's note is what this job needs; the elder's registry care notes stay with staff.
    assert job["care"]["note"] == "请带防滑垫" and "notes" not in job["care"]
    assert job["care"]["care_level"] == "partial" and job["phone_revealable"] is True
    text = json.dumps(day, ensure_ascii=False)
    for secret in (
        ELDER["phone"],
        NOTES,
        "dibao",
        "assistance",
        "birth",
        ELDER["birth_date"],
        "lives_alone",
        "family",
    ):
        assert secret not in text, secret
    assert day["since"] > 0


def test_a_finished_job_keeps_only_the_masked_name(w: World) -> None:
    job = w.job(note="请带防滑垫")
    w.api.ok("POST", f"/api/requests/{job}/check-out", w.provider_user, json={**HOME, "outcome": "not_home"})
    done = _job(_today(w, w.provider_user), job)
    assert done["status"] == "cancelled" and done["visit"]["outcome"] == "not_home"
    assert done["elder"]["name"] == "张*英" and done["elder"]["address"] is None
    assert done["care"]["note"] == "" and done["phone_revealable"] is False


def test_jobs_are_scoped_to_the_provider_and_the_caregiver(w: World) -> None:
    first, second = w.job(caregiver=0), w.job(caregiver=1)
    assert {j["request_id"] for j in _today(w, w.provider_user)["jobs"]} == {first, second}
    mine = _today(w, w.caregiver_users[0])
    assert [j["request_id"] for j in mine["jobs"]] == [first] and mine["caregiver"]["name"] == "王芳"
    assert [j["request_id"] for j in _today(w, w.caregiver_users[1])["jobs"]] == [second]
    assert _today(w, w.other_user)["jobs"] == []
    # ... and so is acting on them.
    other_caregiver = w.caregiver_users[1]
    for path, body in ((f"/api/requests/{first}/check-in", HOME), (f"/api/requests/{first}/check-out",
                        {**HOME, "outcome": "not_home"}), (f"/api/field/jobs/{first}/phone", None)):  # fmt: skip
        for user in (other_caregiver, w.other_user):
            assert w.api.call("POST", path, user, json=body).status_code == 404, (path, user)
    assert w.api.ok("GET", f"/api/requests/{first}", w.operator)["status"] == "assigned"
    for user in (w.daughter, w.operator, w.manager):
        assert w.api.call("GET", "/api/field/today", user).status_code == 403


def test_the_phone_is_revealed_for_an_open_job_only_and_audited(w: World) -> None:
    job = w.job(caregiver=0)
    assert w.api.ok("POST", f"/api/field/jobs/{job}/phone", w.caregiver_users[0]) == {
        "request_id": job,
        "phone": ELDER["phone"],
    }
    with session_scope(write=False) as session:
        (entry,) = session.exec(select(AuditEntry).where(AuditEntry.what == f"phone for job {job}")).all()
    assert entry.elder_id == w.elder["id"] and entry.actor_role == "provider"
    w.api.ok("POST", f"/api/requests/{job}/check-out", w.provider_user, json={**HOME, "outcome": "refused"})
    assert w.api.call("POST", f"/api/field/jobs/{job}/phone", w.provider_user).status_code == 409
    # An offer not yet accepted shows the masked number only.
    w.api.ok("PATCH", f"/api/providers/{w.other_provider['id']}", w.manager, json={"active": False})
    offered = w.request("home_care")["id"]
    drain_jobs()
    (offer,) = [
        o for o in w.api.ok("GET", "/api/field/offers", w.provider_user) if o["request_id"] == offered
    ]
    assert offer["elder"]["phone"] == "138****0001" and offer["elder"]["name"] == "张*英"
    assert w.api.call("POST", f"/api/field/jobs/{offered}/phone", w.provider_user).status_code == 404


def test_offers_pending_then_ended_with_why(w: World) -> None:
    w.api.ok("PATCH", f"/api/providers/{w.other_provider['id']}", w.manager, json={"active": False})
    declined, cancelled = w.request("home_care")["id"], w.request("home_care")["id"]
    drain_jobs()
    offers = {o["request_id"]: o for o in w.api.ok("GET", "/api/field/offers", w.provider_user)}
    assert {offers[declined]["status"], offers[cancelled]["status"]} == {"pending"}
    chosen = {offers[declined]["caregiver_id"], offers[cancelled]["caregiver_id"]}
    for cg, user in zip(w.caregivers, w.caregiver_users, strict=True):
        seen = {o["request_id"] for o in w.api.ok("GET", "/api/field/offers", user)}
        assert seen == {r for r, o in offers.items() if o["caregiver_id"] == cg["id"]}, (chosen, seen)
    assert w.api.ok("GET", "/api/field/offers", w.other_user) == []

    w.api.ok(
        "POST", f"/api/offers/{offers[declined]['id']}/decline", w.provider_user, json={"reason": "人手不足"}
    )
    w.api.ok("POST", f"/api/requests/{cancelled}/cancel", w.operator, json={"reason": "老人不需要了"})
    ended = {o["request_id"]: o for o in w.api.ok("GET", "/api/field/offers", w.provider_user)}
    assert ended[declined]["status"] == "declined" and ended[declined]["reason"] == "人手不足"
    assert ended[cancelled]["status"] == "withdrawn" and ended[cancelled]["reason"] == "request cancelled"
    assert all(o["responded_at"] for o in ended.values())


def test_canteen_meal_counts_per_slot(w: World) -> None:
    orders = [
        ("lunch", False, lunch()), ("lunch", False, lunch()), ("lunch", True, lunch()),
        ("dinner", True, dinner()), ("lunch", False, lunch()),
    ]  # fmt: skip
    ids = []
    for slot, delivery, window in orders:
        rid = w.request("meal", details={"slot": slot, "delivery": delivery}, **window)["id"]
        w.assign(rid, provider=w.canteen)
        ids.append(rid)
    w.api.ok("POST", f"/api/requests/{ids[4]}/cancel", w.operator, json={"reason": "住院"})
    w.api.ok("POST", f"/api/requests/{ids[0]}/check-in", w.canteen_user, json=SITE["canteen"])
    w.api.ok("POST", f"/api/requests/{ids[0]}/check-out", w.canteen_user, json=SITE["canteen"])
    day = _today(w, w.canteen_user)
    assert day["meals"] == [
        {"slot": "lunch", "dine_in": 2, "delivery": 1, "done": 1, "cancelled": 1},
        {"slot": "dinner", "dine_in": 0, "delivery": 1, "done": 0, "cancelled": 0},
    ]
    dine_in = _job(day, ids[1])
    assert dine_in["place"] == "provider_site" and dine_in["elder"]["lat"] is None
    assert dine_in["elder"]["address"] == w.canteen["address"]  # where the meal is served
    assert _today(w, w.provider_user)["meals"] == []


def test_day_care_attendance(w: World) -> None:
    ids = []
    for _ in range(4):
        rid = w.request("day_care", **day_care_day())["id"]
        w.assign(rid, provider=w.day_care)
        ids.append(rid)
    mark = "/api/requests/{}/check-in"
    for rid in ids[:3]:
        w.api.ok("POST", mark.format(rid), w.day_care_user, json=SITE["day_care"])
    w.api.ok("POST", f"/api/requests/{ids[0]}/check-out", w.day_care_user, json=SITE["day_care"])
    day = _today(w, w.day_care_user)
    assert day["attendance"] == {"expected": 1, "arrived": 2, "left": 1, "absent": 0}
    assert {j["status"] for j in day["jobs"]} == {"assigned", "in_service", "completed"}
    # Another day: its own counts, the jobs still open (whenever they were due), not today's closed.
    past = date.fromisoformat(day["day"]) - timedelta(days=30)
    then = w.api.ok("GET", f"/api/field/today?day={past}", w.day_care_user)
    assert then["day"] == str(past) and then["attendance"] == {
        "expected": 0,
        "arrived": 0,
        "left": 0,
        "absent": 0,
    }
    assert {j["request_id"] for j in then["jobs"]} == set(ids[1:])
    for bad in ("tomorrow", "0001-01-01", "9999-12-31"):
        assert w.api.call("GET", f"/api/field/today?day={bad}", w.day_care_user).status_code == 422
