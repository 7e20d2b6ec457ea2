"""The message outbox and welfare checks."""

from __future__ import annotations

from sqlmodel import select

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.notify.models import Message
from dispatch.notify.service import queue_sms
from dispatch.welfare.service import raise_welfare_check
from tests.helpers import Api, drain_jobs, make_user


def test_sms_without_twilio_stays_in_the_outbox_visible_to_operators(api: Api) -> None:
    w = api.world()
    with session_scope() as session:
        queue_sms(session, to="+8613800000001", body="测试", purpose="reply", audience="family")
    drain_jobs()
    messages = api.ok("GET", "/api/messages", w["operator"])
    assert [(m["status"], m["to"]) for m in messages] == [("outbox_only", "+8613800000001")]
    masked = api.ok("GET", "/api/messages", w["manager"])
    assert masked[0]["to"] == "138****0001"
    assert api.call("GET", "/api/messages", w["provider_user"]).status_code == 403


def test_send_job_twice_sends_once(api: Api) -> None:
    from workers.notify import send_sms

    with session_scope() as session:
        message = queue_sms(session, to="+8613800000001", body="x", purpose="reply", audience="family")
        message_id = message.id
    assert message_id is not None
    assert send_sms(message_id=message_id) == "outbox_only"
    assert send_sms(message_id=message_id) == "skipped"
    with session_scope(write=False) as session:
        assert session.get(Message, message_id).attempts == 1  # type: ignore[union-attr]


def test_welfare_check_is_pinned_for_operators_and_tells_the_family_once(api: Api) -> None:
    w = api.world()
    family = make_user(Role.FAMILY, phone="+8613900000077")
    api.ok("POST", f"/api/elders/{w['elder']['id']}/family", w["operator"], 201, json={"username": family})
    with session_scope() as session:
        check = raise_welfare_check(
            session,
            elder_id=w["elder"]["id"],
            reason="failed_visit:not_home",
            dedupe_key="t:1",
            detail="老人不在家",
        )
        assert check is not None
        request_id = check.request_id
    with session_scope() as session:
        again = raise_welfare_check(
            session, elder_id=w["elder"]["id"], reason="failed_visit:not_home", dedupe_key="t:1"
        )
        assert again is None
    request = api.ok("GET", f"/api/requests/{request_id}", w["operator"])
    assert (request["kind"], request["priority"], request["status"]) == ("visit", "urgent", "escalated")
    assert request["escalation_reason"] == "welfare_check"
    with session_scope(write=False) as session:
        texts = session.exec(select(Message).where(Message.purpose == "welfare")).all()
    assert len(texts) == 1 and texts[0].to_phone == "+8613900000077" and "老人不在家" in texts[0].body
