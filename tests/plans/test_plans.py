"""Service plans: the API, the windows of the requests they create, pause / resume / end, an elder
who dies, and scheduled requests entering the normal pipeline."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from dispatch.core.clock import LOCAL_TZ, local, utcnow
from dispatch.core.db import session_scope
from dispatch.orders.models import ServiceRequest
from dispatch.plans import scheduler
from dispatch.plans.models import PlanOccurrence
from tests.helpers import Api, drain_jobs

ALL_DAYS = [1, 2, 3, 4, 5, 6, 7]


def _plan(api: Api, user: str, elder_id: int, **body: Any) -> dict[str, Any]:
    return api.ok("POST", "/api/plans", user, 201, json={"elder_id": elder_id, **body})  # type: ignore[no-any-return]


def _early_tomorrow() -> tuple[datetime, date]:
    """06:00 tomorrow, local: a fixed point from which a 24-hour horizon holds exactly one day."""
    tomorrow = local(utcnow()).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(6, 0), LOCAL_TZ), tomorrow


def _requests(plan_id: int) -> list[ServiceRequest]:
    with session_scope(write=False) as session:
        ids = session.exec(select(PlanOccurrence.request_id).where(PlanOccurrence.plan_id == plan_id)).all()
        return list(session.exec(select(ServiceRequest).where(col(ServiceRequest.id).in_(ids))).all())


def test_each_kind_books_its_window_with_channel_scheduled(api: Api) -> None:
    w = api.world()
    elder = w["elder"]["id"]
    now, day = _early_tomorrow()
    lunch = _plan(api, w["operator"], elder, kind="meal", weekdays=ALL_DAYS, slot="lunch", delivery=True)
    care = _plan(api, w["operator"], elder, kind="home_care", weekdays=[day.isoweekday()], start_time="14:00",
                 end_time="16:00", skills=["bathing"])  # fmt: skip
    daycare = _plan(api, w["manager"], elder, kind="day_care", weekdays=[day.isoweekday()])
    visit = _plan(api, w["operator"], elder, kind="visit", starts_on=day.isoformat())
    other_day = _plan(api, w["operator"], elder, kind="day_care", weekdays=[(day.isoweekday() % 7) + 1])
    assert visit["every_days"] == 7 and visit["next_on"] == day.isoformat()

    result = scheduler.run(now=now)
    assert result.created == 4 and result.already == 0

    def window(plan: dict[str, Any]) -> tuple[str, str, dict[str, Any], str]:
        (request,) = _requests(plan["id"])
        start, end = local(request.window_start), local(request.window_end)
        assert start.date() == day and request.status == "queued"
        return start.strftime("%H:%M"), end.strftime("%H:%M"), request.details, request.channel

    assert window(lunch) == ("11:00", "12:30", {"slot": "lunch", "delivery": True, "skills": [],
                             "plan_id": lunch["id"], "occurs_on": day.isoformat()}, "scheduled")  # fmt: skip
    assert window(care)[:2] == ("14:00", "16:00") and window(care)[2]["skills"] == ["bathing"]
    assert window(daycare)[:2] == ("08:00", "17:00")
    assert window(visit)[:2] == ("09:00", "11:00")
    assert _requests(other_day["id"]) == []
    # Through the normal API too: the request reads like any other.
    (request,) = _requests(lunch["id"])
    read = api.ok("GET", f"/api/requests/{request.id}", w["operator"])
    assert read["channel"] == "scheduled" and read["details"]["plan_id"] == lunch["id"]
    assert [e["type"] for e in read["timeline"]] == ["request.created"]


def test_running_again_creates_nothing_and_the_horizon_moves_on(api: Api) -> None:
    w = api.world()
    now, day = _early_tomorrow()
    lunch = _plan(api, w["operator"], w["elder"]["id"], kind="meal", weekdays=ALL_DAYS)
    assert scheduler.run(now=now).created == 1
    again = scheduler.run(now=now)
    assert (again.created, again.already) == (0, 0)  # the decision already sees the occurrence
    later = scheduler.run(now=now + timedelta(days=1))
    assert later.created == 1
    days = sorted(local(r.window_start).date() for r in _requests(lunch["id"]))
    assert days == [day, day + timedelta(days=1)]


def test_the_database_refuses_a_second_request_for_the_same_day(api: Api) -> None:
    from sqlalchemy.exc import IntegrityError

    w = api.world()
    now, day = _early_tomorrow()
    lunch = _plan(api, w["operator"], w["elder"]["id"], kind="meal", weekdays=ALL_DAYS)
    scheduler.run(now=now)
    (first,) = _requests(lunch["id"])
    other = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "meal"}
    )
    with pytest.raises(IntegrityError), session_scope() as session:
        session.add(PlanOccurrence(plan_id=lunch["id"], occurs_on=day, request_id=other["id"]))
        session.flush()
    assert [r.id for r in _requests(lunch["id"])] == [first.id]


def test_pause_withdraws_what_was_booked_and_resume_books_it_again(api: Api) -> None:
    w = api.world()
    now, _day = _early_tomorrow()
    lunch = _plan(api, w["operator"], w["elder"]["id"], kind="meal", weekdays=ALL_DAYS)
    scheduler.run(now=now)
    (booked,) = _requests(lunch["id"])
    paused = api.ok("POST", f"/api/plans/{lunch['id']}/pause", w["operator"], json={"reason": "住院一周"})
    assert (
        paused["status"] == "paused" and paused["status_reason"] == "住院一周" and paused["next_on"] is None
    )
    cancelled = api.ok("GET", f"/api/requests/{booked.id}", w["operator"])
    assert cancelled["status"] == "cancelled"
    assert scheduler.run(now=now).created == 0  # a paused plan books nothing
    assert api.call("POST", f"/api/plans/{lunch['id']}/pause", w["operator"]).status_code == 409
    api.ok("POST", f"/api/plans/{lunch['id']}/resume", w["operator"])
    assert scheduler.run(now=now).created == 1
    statuses = sorted(r.status for r in _requests(lunch["id"]))
    assert statuses == ["queued"]  # the withdrawn day was forgotten, then booked again
    occurrences = api.ok("GET", f"/api/plans/{lunch['id']}/occurrences", w["operator"])
    assert [o["status"] for o in occurrences] == ["queued"]


def test_end_withdraws_bookings_and_cannot_be_undone(api: Api) -> None:
    w = api.world()
    now, _day = _early_tomorrow()
    plan = _plan(api, w["operator"], w["elder"]["id"], kind="visit", starts_on=_day.isoformat())
    scheduler.run(now=now)
    ended = api.ok("POST", f"/api/plans/{plan['id']}/end", w["operator"], json={"reason": "家属接回同住"})
    assert ended["status"] == "ended" and ended["ends_on"] is not None
    assert [r.status for r in _requests(plan["id"])] == []  # withdrawn and forgotten
    assert api.call("POST", f"/api/plans/{plan['id']}/resume", w["operator"]).status_code == 409
    assert api.call("POST", f"/api/plans/{plan['id']}/end", w["operator"]).status_code == 409
    assert scheduler.run(now=now).created == 0


def test_an_elder_recorded_deceased_stops_their_plans(api: Api) -> None:
    w = api.world()
    now, _day = _early_tomorrow()
    elder = w["elder"]["id"]
    lunch = _plan(api, w["operator"], elder, kind="meal", weekdays=ALL_DAYS)
    scheduler.run(now=now)
    (booked,) = _requests(lunch["id"])
    today = local(utcnow()).date().isoformat()
    api.ok("PATCH", f"/api/elders/{elder}", w["operator"], json={"deceased_on": today})
    result = scheduler.run(now=now + timedelta(days=1))
    assert result.plans_ended == 1 and result.created == 0
    plan = api.ok("GET", f"/api/plans/{lunch['id']}", w["operator"])
    assert (plan["status"], plan["status_reason"]) == ("ended", "deceased")
    assert api.ok("GET", f"/api/requests/{booked.id}", w["operator"])["status"] == "cancelled"
    # And no new plan for them.
    refused = api.call(
        "POST", "/api/plans", w["operator"], json={"elder_id": elder, "kind": "meal", "weekdays": [1]}
    )
    assert refused.status_code == 409 and "deceased" in refused.json()["detail"]


def test_scheduled_requests_are_matched_like_any_other(api: Api) -> None:
    w = api.world()  # one home-care provider near the elder
    plan = _plan(api, w["operator"], w["elder"]["id"], kind="home_care", weekdays=ALL_DAYS,
                 start_time="00:00", end_time="24:00", skills=["cleaning"])  # fmt: skip
    drain_jobs()  # the creation woke the scheduler job through the outbox; it booked and matched
    (request,) = _requests(plan["id"])
    offers = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    assert [o["request_id"] for o in offers] == [request.id]
    api.ok("POST", f"/api/offers/{offers[0]['id']}/accept", w["provider_user"])
    assert api.ok("GET", f"/api/requests/{request.id}", w["operator"])["status"] == "assigned"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"kind": "meal"}, "weekdays"),
        ({"kind": "meal", "weekdays": [0]}, "weekdays"),
        ({"kind": "meal", "weekdays": [1], "start_time": "09:00", "end_time": "10:00"}, "slot"),
        ({"kind": "visit", "weekdays": [1]}, "every_days"),
        ({"kind": "visit", "every_days": 0}, "every_days"),
        ({"kind": "home_care", "weekdays": [1], "start_time": "10:00", "end_time": "09:00"}, "end_time"),
        ({"kind": "home_care", "weekdays": [1], "start_time": "25:00", "end_time": "26:00"}, "start_time"),
        ({"kind": "day_care", "weekdays": [1], "skills": ["bathing"]}, "skills"),
        (
            {"kind": "day_care", "weekdays": [1], "starts_on": "2026-05-02", "ends_on": "2026-05-01"},
            "ends_on",
        ),
        ({"kind": "emergency", "weekdays": [1]}, "kind"),
        ({"kind": "meal", "weekdays": [1], "status": "active"}, "status"),
    ],
)
def test_bad_plans_are_refused_with_a_reason(api: Api, body: dict[str, Any], why: str) -> None:
    w = api.world()
    response = api.call("POST", "/api/plans", w["operator"], json={"elder_id": w["elder"]["id"], **body})
    assert response.status_code == 422 and why in response.text
    assert api.ok("GET", "/api/plans", w["operator"]) == []


def test_roles_and_unknown_ids(api: Api) -> None:
    w = api.world()
    body = {"elder_id": w["elder"]["id"], "kind": "meal", "weekdays": [1]}
    assert api.call("POST", "/api/plans", w["provider_user"], json=body).status_code == 403
    assert api.call("GET", "/api/plans", w["provider_user"]).status_code == 403
    assert api.call("GET", "/api/plans").status_code == 401
    assert api.call("POST", "/api/plans", w["operator"], json={**body, "elder_id": 999999}).status_code == 404
    assert api.call("GET", "/api/plans/999999", w["operator"]).status_code == 404
    assert api.call("POST", "/api/plans/999999/pause", w["operator"]).status_code == 404
    plan = _plan(api, w["admin"], w["elder"]["id"], kind="meal", weekdays=[1])
    listed = api.ok("GET", "/api/plans?township=静海镇&status=active&kind=meal", w["manager"])
    assert [p["id"] for p in listed] == [plan["id"]] and listed[0]["elder_name"] == w["elder"]["name"]
    assert api.ok("GET", "/api/plans?township=独流镇", w["manager"]) == []
