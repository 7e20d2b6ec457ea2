"""The Twilio SMS gateway, exercised with Twilio's real REST client and a recording HTTP client
in place of the network: the request Twilio would receive is checked field by field."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select
from twilio.http import HttpClient
from twilio.http.response import Response

from dispatch.core.config import Settings, get_settings
from dispatch.core.db import session_scope
from dispatch.notify.gateway import OutboxOnlyGateway
from dispatch.notify.models import Message
from dispatch.notify.service import queue_sms
from hotline import gateway as gateway_module
from hotline.gateway import TwilioGateway, get_gateway

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "gateway-test-token-0123456789"
FROM = "+12025550100"
BASE = "https://hotline.example.gov.cn"
MESSAGE_SID = "SM" + "f" * 32


class RecordingHttpClient(HttpClient):
    """Answers like Twilio's API would, and keeps every request it was asked to send."""

    def __init__(self, status: int = 201, body: dict[str, Any] | None = None) -> None:
        super().__init__(logging.getLogger("tests.twilio"), is_async=False, timeout=10)
        self.status = status
        self.body = body or {"sid": MESSAGE_SID, "status": "queued", "account_sid": ACCOUNT_SID}
        self.requests: list[dict[str, Any]] = []

    def request(  # type: ignore[override]
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self.requests.append(
            {"method": method, "uri": uri, "params": params, "data": data, "headers": headers, "auth": auth}
        )
        return Response(self.status, json.dumps(self.body))


def _settings(**extra: Any) -> Settings:
    values: dict[str, Any] = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "twilio_from_number": FROM,
        "public_base_url": BASE + "/",
        **extra,
    }
    return Settings(**values)


def test_the_request_twilio_would_receive(env: dict[str, str]) -> None:
    http = RecordingHttpClient()
    result = TwilioGateway(_settings(), http_client=http).send(
        to="+8613900000001", body="【静海养老】张*英的居家照护已由康乐服务社接单。", message_id=42
    )
    assert (result.status, result.sid, result.error) == ("sent", MESSAGE_SID, "")
    (sent,) = http.requests
    assert sent["method"] == "POST"
    assert sent["uri"] == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert sent["auth"] == (ACCOUNT_SID, AUTH_TOKEN)
    assert sent["data"] == {
        "To": "+8613900000001",
        "From": FROM,
        "Body": "【静海养老】张*英的居家照护已由康乐服务社接单。",
        "StatusCallback": f"{BASE}/hotline/twilio/status?m=42",
    }
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["headers"]["Accept"] == "application/json"


def test_no_status_callback_without_a_public_url(env: dict[str, str]) -> None:
    http = RecordingHttpClient()
    TwilioGateway(_settings(public_base_url=""), http_client=http).send(
        to="+8613900000001", body="x", message_id=1
    )
    assert "StatusCallback" not in http.requests[0]["data"]


def test_a_refusal_by_twilio_fails_the_message_without_retrying(env: dict[str, str]) -> None:
    http = RecordingHttpClient(
        400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}
    )
    result = TwilioGateway(_settings(), http_client=http).send(to="+860", body="x", message_id=1)
    assert result.status == "failed" and result.error.startswith("twilio 21211")


def test_a_server_error_raises_so_that_rqs_retry_tries_again(env: dict[str, str]) -> None:
    from twilio.base.exceptions import TwilioRestException

    http = RecordingHttpClient(503, {"code": 20500, "message": "Service unavailable"})
    with pytest.raises(TwilioRestException):
        TwilioGateway(_settings(), http_client=http).send(to="+8613900000001", body="x", message_id=1)


def test_the_send_job_sends_through_twilio_and_records_the_sid(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import notify

    http = RecordingHttpClient()
    monkeypatch.setattr(notify, "get_gateway", lambda: TwilioGateway(_settings(), http_client=http))
    with session_scope() as session:
        message = queue_sms(session, to="+8613900000001", body="测试", purpose="assigned", audience="family")
        message_id = message.id
    assert message_id is not None
    assert notify.send_sms(message_id=message_id) == "sent"
    assert notify.send_sms(message_id=message_id) == "skipped"  # a second run sends nothing
    assert len(http.requests) == 1
    with session_scope(write=False) as session:
        stored = session.exec(select(Message)).one()
    assert (stored.status, stored.provider_sid, stored.attempts) == ("sent", MESSAGE_SID, 1)


def test_get_gateway_is_outbox_only_until_twilio_is_configured(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(get_gateway(), OutboxOnlyGateway)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", FROM)
    get_settings.cache_clear()
    gateway_module._twilio.cache_clear()
    try:
        assert isinstance(get_gateway(), TwilioGateway)
    finally:
        gateway_module._twilio.cache_clear()
