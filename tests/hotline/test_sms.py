"""Inbound SMS (a provider's 1/Y accepts, 2/N declines its newest pending offer) and delivery
status callbacks (forward only, idempotent on MessageSid)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.core.errors import Conflict
from dispatch.notify import service as notify_service
from dispatch.notify.gateway import SendResult
from dispatch.notify.models import Message
from dispatch.notify.service import queue_sms
from hotline.models import InboundWebhook
from tests.helpers import HOME_CARE, Api, drain_jobs, make_user
from tests.hotline.conftest import Twilio

PROVIDER_PHONE = HOME_CARE["phone"]


def _offered(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    w = api.world()
    request = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    drain_jobs()
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    assert offer["request_id"] == request["id"]
    return w, offer


def _status(api: Api, w: dict[str, Any], request_id: int) -> str:
    return str(api.ok("GET", f"/api/requests/{request_id}", w["operator"])["status"])


@pytest.mark.parametrize("word", ["1", "y", "Y", "yes", "１", "接单"])
def test_provider_duty_phone_replying_yes_accepts_the_newest_offer(
    api: Api, twilio: Twilio, word: str
) -> None:
    w, offer = _offered(api)
    response = twilio.sms("SM" + "1" * 32, PROVIDER_PHONE, word)
    assert response.status_code == 200
    assert f"<Message>【静海养老】已接单#{offer['request_id']}" in response.text
    assert "张*英" in response.text and "13800000001" not in response.text
    assert _status(api, w, offer["request_id"]) == "assigned"
    assert (
        api.ok("GET", f"/api/requests/{offer['request_id']}", w["operator"])["provider_id"]
        == w["provider"]["id"]
    )


def test_provider_account_phone_replying_no_declines(api: Api, twilio: Twilio) -> None:
    w, offer = _offered(api)
    make_user(Role.PROVIDER, provider_id=w["provider"]["id"], phone="+8613700000009")
    response = twilio.sms("SM" + "2" * 32, "+8613700000009", "N")
    assert "已拒绝派单" in response.text
    offers = api.ok("GET", "/api/offers", w["provider_user"])
    assert offers[0]["status"] == "declined" and offers[0]["reason"] == "短信回复拒绝"
    drain_jobs()  # the only provider declined: nobody is left
    assert _status(api, w, offer["request_id"]) == "escalated"


def test_anything_else_gets_a_short_help_text(api: Api, twilio: Twilio) -> None:
    w, offer = _offered(api)
    response = twilio.sms("SM" + "3" * 32, PROVIDER_PHONE, "明天能来吗？")
    assert "<Message>" in response.text and "回复1接受" in response.text
    assert _status(api, w, offer["request_id"]) == "offered"


def test_unknown_senders_get_nothing_and_change_nothing(api: Api, twilio: Twilio) -> None:
    w, offer = _offered(api)
    response = twilio.sms("SM" + "4" * 32, "+8613999990000", "1")
    assert response.status_code == 200
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert _status(api, w, offer["request_id"]) == "offered"


def test_yes_without_a_pending_offer_says_so(api: Api, twilio: Twilio) -> None:
    api.world()
    response = twilio.sms("SM" + "5" * 32, PROVIDER_PHONE, "1")
    assert "没有待确认的派单" in response.text


def test_a_retried_sms_is_answered_once(api: Api, twilio: Twilio) -> None:
    w, offer = _offered(api)
    answers = {twilio.sms("SM" + "6" * 32, PROVIDER_PHONE, "1").text for _ in range(3)}
    assert len(answers) == 1 and "已接单" in answers.pop()
    timeline = api.ok("GET", f"/api/requests/{offer['request_id']}", w["operator"])["timeline"]
    assert [e["type"] for e in timeline].count("request.assigned") == 1
    with session_scope(write=False) as session:
        assert len(session.exec(select(InboundWebhook).where(InboundWebhook.kind == "sms")).all()) == 1


def test_an_answer_that_loses_a_race_is_rolled_back_and_told_so(
    api: Api, twilio: Twilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, offer = _offered(api)

    def taken(*_args: Any, **_kwargs: Any) -> None:
        raise Conflict("offer is no longer pending")  # as if another answer won meanwhile

    monkeypatch.setattr("hotline.sms.offers.accept", taken)
    response = twilio.sms("SM" + "7" * 32, PROVIDER_PHONE, "1")
    assert "该派单已失效" in response.text
    assert _status(api, w, offer["request_id"]) == "offered"
    with session_scope(write=False) as session:
        (hook,) = session.exec(select(InboundWebhook)).all()
    assert hook.outcome == "gone"


# ---- delivery status callbacks -------------------------------------------------------------


def _sent_message(sid: str) -> int:
    with session_scope() as session:
        message = queue_sms(session, to="+8613900000001", body="测试", purpose="assigned", audience="family")
        assert message.id is not None
        message_id = message.id
    with session_scope() as session:
        assert notify_service.claim_for_sending(session, message_id=message_id) is not None
        notify_service.record_result(
            session, message_id=message_id, result=SendResult(status="sent", sid=sid)
        )
    return message_id


def _message(message_id: int) -> Message:
    with session_scope(write=False) as session:
        message = session.get(Message, message_id)
        assert message is not None
        return message


def test_status_callbacks_only_move_forward_and_count_once(api: Api, twilio: Twilio) -> None:
    sid = "SM" + "a" * 32
    message_id = _sent_message(sid)
    for status in ("sending", "delivered", "delivered", "sent", "queued", "failed"):
        assert twilio.status(sid, status, message_id).status_code == 200
    assert _message(message_id).status == "delivered"
    with session_scope(write=False) as session:
        outcomes = [w.outcome for w in session.exec(select(InboundWebhook)).all()]
    # The repeated "delivered" is a retry: stored once. Late and earlier statuses change nothing.
    assert outcomes == [
        "sending:ignored", "delivered:applied", "sent:ignored", "queued:ignored", "failed:ignored",
    ]  # fmt: skip


def test_a_failure_keeps_twilios_error_code(api: Api, twilio: Twilio) -> None:
    sid = "SM" + "b" * 32
    message_id = _sent_message(sid)
    twilio.status(sid, "undelivered", message_id, ErrorCode="30003")
    message = _message(message_id)
    assert (message.status, message.error) == ("undelivered", "twilio 30003")


def test_a_callback_that_overtakes_the_send_job_still_lands(api: Api, twilio: Twilio) -> None:
    with session_scope() as session:
        message = queue_sms(session, to="+8613900000001", body="测试", purpose="assigned", audience="family")
        message_id = message.id
    assert message_id is not None
    with session_scope() as session:
        notify_service.claim_for_sending(session, message_id=message_id)  # the job is sending...
    sid = "SM" + "c" * 32
    twilio.status(sid, "delivered", message_id)  # ...and Twilio reports delivery before it records "sent"
    with session_scope() as session:
        notify_service.record_result(
            session, message_id=message_id, result=SendResult(status="sent", sid=sid)
        )
    message = _message(message_id)
    assert (message.status, message.provider_sid) == ("delivered", sid)


def test_a_callback_for_an_unknown_message_is_ignored(api: Api, twilio: Twilio) -> None:
    response = twilio.status("SM" + "d" * 32, "delivered")
    assert response.status_code == 200 and response.text.endswith("<Response />")
