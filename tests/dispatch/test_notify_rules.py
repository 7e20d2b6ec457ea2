"""Who gets which SMS (dispatch/notify/rules.py), through the real flow: API, RQ workers, the
state machine. No text ever carries the elder's phone number, address or care notes."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import col, select

from dispatch.core.auth import Role
from dispatch.core.clock import local
from dispatch.core.db import session_scope
from dispatch.notify.models import Message
from dispatch.welfare.service import raise_welfare_check
from services.models import Provider
from tests.helpers import ELDER, HOME_CARE, Api, drain_jobs, make_user

NOTES = "糖尿病，少糖饮食，左腿骨折康复中"
FAMILY_PHONE = "+8613900000088"


def _world(api: Api) -> dict[str, Any]:
    w = api.world()
    api.ok("PATCH", f"/api/elders/{w['elder']['id']}", w["operator"], json={"notes": NOTES})
    daughter = make_user(Role.FAMILY, phone=FAMILY_PHONE)
    api.ok("POST", f"/api/elders/{w['elder']['id']}/family", w["operator"], 201, json={"username": daughter})
    make_user(Role.FAMILY, username="no-phone-relative")
    api.ok(
        "POST",
        f"/api/elders/{w['elder']['id']}/family",
        w["operator"],
        201,
        json={"username": "no-phone-relative"},
    )
    return w


def _messages(*purposes: str) -> list[Message]:
    with session_scope(write=False) as session:
        stmt = select(Message).order_by(col(Message.id))
        if purposes:
            stmt = stmt.where(col(Message.purpose).in_(purposes))
        return list(session.exec(stmt).all())


def _post(api: Api, w: dict[str, Any], **body: Any) -> dict[str, Any]:
    return api.ok(  # type: ignore[no-any-return]
        "POST",
        "/api/requests",
        w["operator"],
        202,
        json={"elder_id": w["elder"]["id"], "kind": "home_care", **body},
    )


def _assert_discreet(messages: list[Message]) -> None:
    """No full phone number of the elder, no address, no health detail, in any text."""
    national = ELDER["phone"].removeprefix("+86")
    for m in messages:
        assert national not in m.body and ELDER["phone"] not in m.body, m.body
        assert ELDER["address"] not in m.body and "胜利路" not in m.body, m.body
        assert "糖尿病" not in m.body and "骨折" not in m.body and NOTES not in m.body, m.body
        assert "张秀英" not in m.body, m.body  # the name is masked: 张*英
        assert len(m.body) <= 90, m.body  # short: one or two SMS segments


def test_offer_goes_to_the_provider_with_the_reply_hint_and_deadline(api: Api) -> None:
    w = _world(api)
    request = _post(api, w, details={"skills": ["bathing"]})
    drain_jobs()
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    (text,) = _messages("offer")
    assert (text.to_phone, text.audience, text.request_id, text.provider_id) == (
        HOME_CARE["phone"],
        "provider",
        request["id"],
        w["provider"]["id"],
    )
    deadline = local(api_time(offer["expires_at"]))
    assert (
        f"新派单#{request['id']}" in text.body and "居家照护" in text.body and "张*英（静海镇）" in text.body
    )
    assert "回复1接单，回复2拒绝" in text.body and f"{deadline:%H:%M}前回复" in text.body
    assert _messages("assigned", "escalated", "completed") == []  # the family hears of offers not at all
    _assert_discreet(_messages())


def api_time(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


def test_family_hears_assigned_then_completed(api: Api) -> None:
    w = _world(api)
    request = _post(api, w)
    drain_jobs()
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    spot = {"lat": ELDER["lat"], "lon": ELDER["lon"]}
    api.ok("POST", f"/api/requests/{request['id']}/check-in", w["provider_user"], json=spot)
    api.ok("POST", f"/api/requests/{request['id']}/check-out", w["provider_user"], json=spot)
    texts = _messages("assigned", "completed")
    assert [(m.purpose, m.to_phone, m.audience) for m in texts] == [
        ("assigned", FAMILY_PHONE, "family"),
        ("completed", FAMILY_PHONE, "family"),
    ]
    assert HOME_CARE["name"] in texts[0].body and "已由" in texts[0].body
    assert "已于" in texts[1].body and "完成" in texts[1].body
    _assert_discreet(_messages())


def test_escalation_tells_the_family_and_manual_dispatch_tells_both(api: Api) -> None:
    w = _world(api)
    request = _post(api, w, kind="day_care")  # no day-care center at all: escalated at once
    drain_jobs()
    (escalated,) = _messages("escalated")
    assert escalated.to_phone == FAMILY_PHONE and "调度中心正在人工处理" in escalated.body
    center = api.ok(
        "POST", "/api/providers", w["manager"], 201,
        json={**HOME_CARE, "name": "静海镇日间照料中心", "kind": "day_care", "phone": "+8613600000077",
              "skills": [], "hours": {"open": "00:00", "close": "24:00"}},
    )  # fmt: skip
    api.ok("POST", f"/api/requests/{request['id']}/assign", w["operator"], json={"provider_id": center["id"]})
    dispatched = _messages("dispatched")
    assert [(m.to_phone, m.audience) for m in dispatched] == [("+8613600000077", "provider")]
    assert f"调度中心派单#{request['id']}" in dispatched[0].body
    assert [m.to_phone for m in _messages("assigned")] == [FAMILY_PHONE]
    _assert_discreet(_messages())


def test_an_emergency_tells_the_family_at_once(api: Api) -> None:
    w = _world(api)
    _post(api, w, kind="emergency")  # before any matching runs
    text, duty = sorted(_messages(), key=lambda m: m.audience)  # family, operator
    assert (text.purpose, text.to_phone) == ("emergency", FAMILY_PHONE)
    assert text.body.startswith("【静海养老】紧急：张*英发出紧急求助")
    # The duty operator's phone too, in parallel with matching (issue 8).
    assert (duty.purpose, duty.audience, duty.to_phone) == ("emergency", "operator", "+862268000000")
    assert duty.body.startswith("【静海养老】紧急求助#") and "张*英（静海镇）" in duty.body
    drain_jobs()
    assert _messages("escalated") == []  # no second alarm if nobody can take it
    _assert_discreet(_messages())


def test_a_welfare_check_is_texted_once_not_twice(api: Api) -> None:
    w = _world(api)
    with session_scope() as session:
        raise_welfare_check(session, elder_id=w["elder"]["id"], reason="meal_not_delivered", dedupe_key="w:1")
    assert [m.purpose for m in _messages()] == ["welfare"]


def test_a_provider_without_a_duty_phone_is_texted_on_its_account(api: Api) -> None:
    w = _world(api)
    with session_scope() as session:  # the API requires a phone; older registry rows may lack one
        provider = session.get(Provider, w["provider"]["id"])
        assert provider is not None
        provider.phone = ""
        session.add(provider)
    make_user(Role.PROVIDER, provider_id=w["provider"]["id"], phone="+8613700000042")
    _post(api, w)
    drain_jobs()
    assert [m.to_phone for m in _messages("offer")] == ["+8613700000042"]


def test_texts_are_short_chinese(api: Api) -> None:
    w = _world(api)
    _post(api, w, kind="meal", details={"slot": "dinner", "delivery": True})
    drain_jobs()
    (offer,) = _messages("offer")
    assert "助餐（晚餐，送餐上门）" in offer.body
    assert re.search(r"\d+月\d+日\d\d:\d\d-\d\d:\d\d", offer.body)
