"""The voice webhooks: greeting and menu, the operator for unknown callers and after hours,
requests filed by key press (once per call however often Twilio retries), wrong keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from dispatch.core.auth import Role
from dispatch.core.clock import local, utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.notify.models import Message
from dispatch.orders.models import ServiceRequest
from hotline.models import InboundWebhook
from tests.helpers import ELDER, Api, make_user
from tests.hotline.conftest import OPERATOR, PUBLIC_BASE_URL, Twilio

ELDER_PHONE = ELDER["phone"]
CALL = "CA" + "1" * 32


def _requests() -> list[ServiceRequest]:
    with session_scope(write=False) as session:
        return list(session.exec(select(ServiceRequest)).all())


def _webhooks() -> list[InboundWebhook]:
    with session_scope(write=False) as session:
        return list(session.exec(select(InboundWebhook).order_by(InboundWebhook.id)).all())  # type: ignore[arg-type]


def _xml(response: Any) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return str(response.text)


def test_known_elder_is_greeted_by_name_with_the_menu(api: Api, twilio: Twilio) -> None:
    api.world()
    xml = _xml(twilio.call(CALL, ELDER_PHONE))
    assert f'<Gather action="{PUBLIC_BASE_URL}/hotline/twilio/gather?attempt=0"' in xml
    assert 'numDigits="1"' in xml and 'actionOnEmptyResult="true"' in xml
    assert '<Say language="cmn-CN" voice="Polly.Zhiyu">张秀英您好' in xml
    assert "助餐请按1" in xml and "居家照护请按2" in xml and "日间照料请按3" in xml and "紧急求助请按9" in xml
    assert "<Dial" not in xml
    assert [(w.kind, w.outcome) for w in _webhooks()] == [("voice", "menu")]


def test_linked_relative_is_told_whom_the_booking_is_for(api: Api, twilio: Twilio) -> None:
    w = api.world()
    daughter = make_user(Role.FAMILY, phone="+8613900000055")
    api.ok("POST", f"/api/elders/{w['elder']['id']}/family", w["operator"], 201, json={"username": daughter})
    xml = _xml(twilio.call(CALL, "+8613900000055"))
    assert "将为张秀英预约服务" in xml and "<Gather" in xml


def test_unknown_caller_is_put_through_to_the_operator(api: Api, twilio: Twilio) -> None:
    api.world()
    xml = _xml(twilio.call(CALL, "+8613911112222"))
    assert f'<Dial timeout="30">{OPERATOR}</Dial>' in xml
    assert "<Gather" not in xml and 'language="cmn-CN"' in xml
    assert _webhooks()[0].outcome == "operator:unknown"


def test_anonymous_caller_is_put_through_to_the_operator(api: Api, twilio: Twilio) -> None:
    xml = _xml(twilio.call(CALL, "anonymous"))
    assert f">{OPERATOR}</Dial>" in xml


def test_a_number_shared_by_two_elders_goes_to_the_operator(api: Api, twilio: Twilio) -> None:
    w = api.world()
    api.ok("POST", "/api/elders", w["operator"], 201, json={**ELDER, "name": "李建国"})
    xml = _xml(twilio.call(CALL, ELDER_PHONE))
    assert f">{OPERATOR}</Dial>" in xml
    assert _webhooks()[0].outcome == "operator:ambiguous"


def test_after_hours_even_a_known_caller_goes_to_the_operator(
    api: Api, twilio: Twilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.world()
    now = local(utcnow())
    # Hours that start in two hours and end in three: whatever the time now, we are outside them.
    monkeypatch.setenv("HOTLINE_OPEN", f"{(now + timedelta(hours=2)):%H}:00")
    monkeypatch.setenv("HOTLINE_CLOSE", f"{(now + timedelta(hours=3)):%H}:00")
    get_settings.cache_clear()
    xml = _xml(twilio.call(CALL, ELDER_PHONE))
    assert "非工作时间" in xml and f">{OPERATOR}</Dial>" in xml and "<Gather" not in xml


@pytest.mark.parametrize(("digit", "kind"), [("1", "meal"), ("2", "home_care"), ("3", "day_care")])
def test_a_key_files_an_ivr_request_and_confirms_it(api: Api, twilio: Twilio, digit: str, kind: str) -> None:
    w = api.world()  # the elder's care level is "partial": a meal is delivered
    twilio.call(CALL, ELDER_PHONE)
    xml = _xml(twilio.press(CALL, ELDER_PHONE, digit))
    assert "已为您登记" in xml and "<Hangup />" in xml and "<Dial" not in xml
    (request,) = _requests()
    assert (request.elder_id, request.kind, request.channel, request.status) == (
        w["elder"]["id"],
        kind,
        "ivr",
        "queued",
    )
    if kind == "meal":
        assert (request.details["slot"], request.details["delivery"]) == ("lunch", True)
    hook = _webhooks()[-1]
    assert (hook.kind, hook.digits, hook.outcome, hook.request_id) == ("gather", digit, "request", request.id)
    shown = api.ok("GET", f"/api/requests/{request.id}", w["operator"])
    assert shown["channel"] == "ivr" and shown["timeline"][0]["type"] == "request.created"


def test_nine_is_an_urgent_emergency_put_through_at_once_and_the_family_is_texted(
    api: Api, twilio: Twilio
) -> None:
    w = api.world()
    son = make_user(Role.FAMILY, phone="+8613900000066")
    api.ok("POST", f"/api/elders/{w['elder']['id']}/family", w["operator"], 201, json={"username": son})
    twilio.call(CALL, ELDER_PHONE)
    xml = _xml(twilio.press(CALL, ELDER_PHONE, "9"))
    assert "紧急求助" in xml and f">{OPERATOR}</Dial>" in xml
    (request,) = _requests()
    assert (request.kind, request.priority, request.channel) == ("emergency", "urgent", "ivr")
    with session_scope(write=False) as session:
        texts = session.exec(select(Message).where(Message.purpose == "emergency")).all()
    # The family, and the duty operator's phone as well (issue 8).
    assert sorted((m.to_phone, m.audience) for m in texts) == [
        ("+8613900000066", "family"),
        (OPERATOR, "operator"),
    ]


def test_wrong_keys_repeat_the_menu_twice_then_the_operator(api: Api, twilio: Twilio) -> None:
    api.world()
    twilio.call(CALL, ELDER_PHONE)
    first = _xml(twilio.press(CALL, ELDER_PHONE, "5", attempt=0))
    assert "没有听清" in first and "gather?attempt=1" in first
    second = _xml(twilio.press(CALL, ELDER_PHONE, "", attempt=1))  # no key at all
    assert "gather?attempt=2" in second
    third = _xml(twilio.press(CALL, ELDER_PHONE, "7", attempt=2))
    assert f">{OPERATOR}</Dial>" in third and "<Gather" not in third
    assert _requests() == []
    assert [w.outcome for w in _webhooks()] == ["menu", "repeat", "repeat", "operator:no_choice"]


def test_twilio_retries_create_nothing_twice(api: Api, twilio: Twilio) -> None:
    api.world()
    greetings = {twilio.call(CALL, ELDER_PHONE).text for _ in range(3)}
    answers = {twilio.press(CALL, ELDER_PHONE, "1").text for _ in range(3)}
    assert len(greetings) == 1 and len(answers) == 1
    assert len(_requests()) == 1
    assert [w.kind for w in _webhooks()] == ["voice", "gather"]
    # Even a second valid key later in the same call files nothing new: one request per CallSid.
    twilio.press(CALL, ELDER_PHONE, "1", attempt=1)
    assert len(_requests()) == 1


def test_refused_intake_rolls_back_and_puts_the_caller_through(api: Api, twilio: Twilio) -> None:
    w = api.world()
    twilio.call(CALL, ELDER_PHONE)
    # Between the greeting and the key press the registry learns the elder has died.
    api.ok("PATCH", f"/api/elders/{w['elder']['id']}", w["operator"], json={"deceased_on": "2026-01-02"})
    xml = _xml(twilio.press(CALL, ELDER_PHONE, "1"))
    assert f">{OPERATOR}</Dial>" in xml
    assert _requests() == []
    assert _webhooks()[-1].outcome == "operator:refused"


def test_twins_delivered_at_the_same_moment_file_one_request(api: Api, twilio: Twilio) -> None:
    """Twilio's retry may arrive while the first delivery is still being handled: the unique
    webhook key makes the twin wait, then answer with what the first one stored."""
    from concurrent.futures import ThreadPoolExecutor

    from hotline import api as hotline_api

    api.world()
    twilio.call(CALL, ELDER_PHONE)
    params = {"CallSid": CALL, "From": ELDER_PHONE, "Digits": "1"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: hotline_api.key_pressed(params, attempt=0).body, range(4)))
    assert len(set(answers)) == 1 and b"<Hangup />" in answers[0]
    assert len(_requests()) == 1
    assert [w.kind for w in _webhooks()] == ["voice", "gather"]
