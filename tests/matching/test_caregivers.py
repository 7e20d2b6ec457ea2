"""Direct to caregiver: the offer names the caregiver the matcher chose (skills, shift, the
least busy, jobs at once per caregiver); before accepting, the provider's account may
re-assign it to another of its caregivers (`POST /api/offers/{id}/caregiver`), which is
checked the same way."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlmodel import select

from dispatch.core.audit import AuditEntry
from dispatch.core.auth import Role
from dispatch.core.clock import LOCAL_TZ, local, utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from tests.helpers import HOME_CARE, Api, drain_jobs, make_user


def _caregiver(api: Api, w: dict[str, Any], name: str, skills: list[str], **extra: Any) -> dict[str, Any]:
    body = {"name": name, "phone": f"+86137000000{len(name):02d}", "skills": skills, **extra}
    return api.ok("POST", f"/api/providers/{w['provider']['id']}/caregivers", w["manager"], 201, json=body)  # type: ignore[no-any-return]


def _tomorrow(hour: int) -> str:
    day = local(utcnow()).date() + timedelta(days=1)
    return datetime.combine(day, time(hour), LOCAL_TZ).isoformat()


# A fixed window (tomorrow 09:00-11:00, local), so that shifts are tested whatever the hour.
WINDOW = {"window_start": _tomorrow(9), "window_end": _tomorrow(11)}


def _offer(api: Api, w: dict[str, Any], **details: Any) -> dict[str, Any]:
    body = {"elder_id": w["elder"]["id"], "kind": "home_care", "details": details, **WINDOW}
    req = api.ok("POST", "/api/requests", w["operator"], 202, json=body)
    drain_jobs()
    offers = [
        o
        for o in api.ok("GET", "/api/offers?status=pending", w["provider_user"])
        if o["request_id"] == req["id"]
    ]
    assert offers, api.ok("GET", f"/api/requests/{req['id']}", w["operator"])
    return offers[0]  # type: ignore[no-any-return]


def _redirect(api: Api, user: str, offer: dict[str, Any], caregiver: dict[str, Any]) -> Any:
    return api.call(
        "POST", f"/api/offers/{offer['id']}/caregiver", user, json={"caregiver_id": caregiver["id"]}
    )


def test_the_offer_names_a_skilled_caregiver_and_may_be_redirected(api: Api) -> None:
    w = api.world()
    cleaner = _caregiver(api, w, "王保洁", ["cleaning"])
    bather = _caregiver(api, w, "李助浴员", ["bathing", "cleaning"])
    offer = _offer(api, w, skills=["bathing"])
    assert offer["caregiver_id"] == bather["id"]  # the only one who can bathe
    r = _redirect(api, w["provider_user"], offer, cleaner)
    assert r.status_code == 409 and "lacks the skills" in r.json()["detail"]
    cleaning = _offer(api, w, skills=["cleaning"])
    assert cleaning["caregiver_id"] == cleaner["id"]  # the least busy of the two who can clean
    moved = _redirect(api, w["provider_user"], cleaning, bather)
    assert moved.status_code == 200 and moved.json()["caregiver_id"] == bather["id"]
    with session_scope(write=False) as session:  # the answer shows the elder: audited
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.action == "read", AuditEntry.what == "offer")
        ).all()
    assert [(r.elder_id, r.actor_role) for r in rows] == [(w["elder"]["id"], "provider")]
    request = api.ok("POST", f"/api/offers/{cleaning['id']}/accept", w["provider_user"])
    assert request["caregiver_id"] == bather["id"]
    assert [e["type"] for e in request["timeline"]] == [
        "request.created",
        "request.offered",
        "request.assigned",
    ]
    with session_scope(write=False) as session:  # who goes to the elder's door: in the audit log
        (change,) = session.exec(select(AuditEntry).where(AuditEntry.action == "offer.caregiver")).all()
    assert change.what == f"offer {cleaning['id']}: caregiver {cleaner['id']} -> {bather['id']}"
    assert (change.elder_id, change.actor_role) == (w["elder"]["id"], "provider")


def test_a_caregiver_off_shift_or_fully_booked_is_refused(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREGIVER_MAX_JOBS", "1")
    get_settings.cache_clear()
    w = api.world()
    day = _caregiver(api, w, "赵白班", ["cleaning"])
    night = _caregiver(api, w, "钱夜班", ["cleaning"], shift_start="00:00", shift_end="00:30")
    first = _offer(api, w, skills=["cleaning"])
    assert first["caregiver_id"] == day["id"]  # the night shift is not on at 09:00
    r = _redirect(api, w["provider_user"], first, night)
    assert r.status_code == 409 and "not on shift" in r.json()["detail"]
    api.ok("POST", f"/api/offers/{first['id']}/accept", w["provider_user"])
    # The day caregiver now has her one job at once: a second request finds nobody free.
    body = {"elder_id": w["elder"]["id"], "kind": "home_care", "details": {"skills": ["cleaning"]}, **WINDOW}
    second = api.ok("POST", "/api/requests", w["operator"], 202, json=body)
    drain_jobs()
    final = api.ok("GET", f"/api/requests/{second['id']}", w["operator"])
    assert final["status"] == "escalated" and final["escalation_reason"] == "all_full"


def test_only_the_offers_own_provider_and_only_while_pending(api: Api) -> None:
    w = api.world()
    a = _caregiver(api, w, "孙一", ["cleaning"])
    b = _caregiver(api, w, "周二", ["cleaning"])
    offer = _offer(api, w, skills=["cleaning"])
    elsewhere = api.ok(
        "POST", "/api/providers", w["manager"], 201,
        json={**HOME_CARE, "name": "别家服务社", "phone": "+8613600000077"},
    )  # fmt: skip
    stranger = make_user(Role.PROVIDER, provider_id=elsewhere["id"])
    assert _redirect(api, stranger, offer, b).status_code == 404  # another provider's offer
    assert _redirect(api, w["operator"], offer, b).status_code == 403  # providers only
    other = b if offer["caregiver_id"] == a["id"] else a
    bound = make_user(Role.PROVIDER, provider_id=w["provider"]["id"], caregiver_id=offer["caregiver_id"])
    r = _redirect(api, bound, offer, other)
    assert r.status_code == 403 and "that caregiver" in r.json()["detail"]
    assert _redirect(api, w["provider_user"], offer, other).status_code == 200
    unknown = api.call(
        "POST", f"/api/offers/{offer['id']}/caregiver", w["provider_user"], json={"caregiver_id": 99999}
    )
    assert unknown.status_code == 404
    bad = api.call("POST", f"/api/offers/{offer['id']}/caregiver", w["provider_user"], json={"caregiver": 1})
    assert bad.status_code == 422
    api.ok("POST", f"/api/offers/{offer['id']}/decline", w["provider_user"], json={"reason": "忙"})
    late = _redirect(api, w["provider_user"], offer, a)
    assert late.status_code == 409 and "no longer pending" in late.json()["detail"]
