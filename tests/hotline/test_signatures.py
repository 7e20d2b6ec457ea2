"""Every webhook checks X-Twilio-Signature (Twilio's RequestValidator, PUBLIC_BASE_URL + path):
valid is accepted; tampered, missing, wrong-URL and wrong-token signatures are 403 and change
nothing; without TWILIO_AUTH_TOKEN the webhooks refuse everything."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func
from sqlmodel import select

from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.events import Event
from dispatch.core.outbox import OutboxJob
from dispatch.notify.models import Message
from dispatch.orders.models import ServiceRequest
from hotline.models import InboundWebhook
from tests.helpers import ELDER, Api
from tests.hotline.conftest import PUBLIC_BASE_URL, Twilio

ENDPOINTS = {
    "voice": ("/hotline/twilio/voice", {"CallSid": "CA" + "2" * 32, "From": ELDER["phone"]}),
    "gather": (
        "/hotline/twilio/gather?attempt=0",
        {"CallSid": "CA" + "2" * 32, "From": ELDER["phone"], "Digits": "1"},
    ),
    "sms": ("/hotline/twilio/sms", {"MessageSid": "SM" + "2" * 32, "From": "+8613600000001", "Body": "1"}),
    "status": ("/hotline/twilio/status", {"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered"}),
}


def _counts() -> tuple[int, ...]:
    with session_scope(write=False) as session:
        return tuple(
            session.exec(select(func.count()).select_from(table)).one()
            for table in (InboundWebhook, ServiceRequest, Event, OutboxJob, Message)
        )


Attack = Callable[[Twilio, str, dict[str, str]], object]

ATTACKS: dict[str, Attack] = {
    # A parameter changed after Twilio signed the request.
    "tampered": lambda t, path, p: t.post(path, {**p, "From": "+8613999999999"}, signed_params=p),
    # Signed for another URL (another host, or plain http behind a proxy).
    "wrong-url": lambda t, path, p: t.post(path, p, signed_url="https://evil.example.com" + path),
    "http-not-https": lambda t, path, p: t.post(
        path, p, signed_url=PUBLIC_BASE_URL.replace("https", "http") + path
    ),
    # Signed with another account's auth token.
    "wrong-token": lambda t, path, p: t.post(path, p, token="someone-elses-token"),
    "missing": lambda t, path, p: t.client.post(path, data=p),
    "garbage": lambda t, path, p: t.client.post(path, data=p, headers={"X-Twilio-Signature": "bm90IGEgc2ln"}),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_bad_signatures_are_refused_and_change_nothing(
    api: Api, twilio: Twilio, endpoint: str, attack: str
) -> None:
    api.world()
    path, params = ENDPOINTS[endpoint]
    before = _counts()
    response = ATTACKS[attack](twilio, path, params)
    assert response.status_code == 403, response.text  # type: ignore[attr-defined]
    assert _counts() == before


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_valid_signature_is_accepted(api: Api, twilio: Twilio, endpoint: str) -> None:
    api.world()
    path, params = ENDPOINTS[endpoint]
    response = twilio.post(path, params)
    assert response.status_code == 200, response.text
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response')


def test_the_query_string_is_part_of_what_is_signed(api: Api, twilio: Twilio) -> None:
    api.world()
    path, params = ENDPOINTS["gather"]
    signed_for_attempt_0 = twilio.signature(PUBLIC_BASE_URL + path, params)
    response = twilio.client.post(
        "/hotline/twilio/gather?attempt=2", data=params, headers={"X-Twilio-Signature": signed_for_attempt_0}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("unset", ["TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL"])
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_without_token_or_public_url_every_webhook_is_refused(
    api: Api, twilio: Twilio, monkeypatch: pytest.MonkeyPatch, endpoint: str, unset: str
) -> None:
    api.world()
    monkeypatch.delenv(unset)
    get_settings.cache_clear()
    path, params = ENDPOINTS[endpoint]
    before = _counts()
    response = twilio.post(path, params)  # even correctly signed with the old token
    assert response.status_code == 403 and "must be set" in response.text
    assert _counts() == before


def test_a_signed_post_missing_the_call_sid_is_400(api: Api, twilio: Twilio) -> None:
    before = _counts()
    response = twilio.post("/hotline/twilio/voice", {"From": ELDER["phone"]})
    assert response.status_code == 400 and "CallSid" in response.text
    assert _counts() == before
