"""Twilio as the tests see it: webhooks signed with Twilio's own RequestValidator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from dispatch.core.config import get_settings

AUTH_TOKEN = "test-twilio-auth-token-0123456789"
PUBLIC_BASE_URL = "https://hotline.example.gov.cn"
OPERATOR = "+862268001234"


@dataclass
class Twilio:
    """Posts webhooks the way Twilio does: form-encoded, signed over the public URL."""

    client: httpx.Client
    token: str = AUTH_TOKEN

    def signature(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        return str(RequestValidator(token or self.token).compute_signature(url, params))

    def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        signed_url: str | None = None,
        signed_params: dict[str, str] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Sign `signed_params` for `signed_url` (default: what is posted), post `params`."""
        url = signed_url or PUBLIC_BASE_URL + path
        sig = self.signature(url, signed_params if signed_params is not None else params, token)
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": sig, **(headers or {})})

    def call(self, sid: str, caller: str) -> httpx.Response:
        return self.post("/hotline/twilio/voice", {"CallSid": sid, "From": caller, "To": "+862268000000"})

    def press(self, sid: str, caller: str, digits: str, attempt: int = 0) -> httpx.Response:
        return self.post(
            f"/hotline/twilio/gather?attempt={attempt}",
            {"CallSid": sid, "From": caller, "Digits": digits},
        )

    def sms(self, sid: str, sender: str, body: str) -> httpx.Response:
        return self.post("/hotline/twilio/sms", {"MessageSid": sid, "From": sender, "Body": body})

    def status(self, sid: str, status: str, message_id: int | None = None, **extra: Any) -> httpx.Response:
        path = "/hotline/twilio/status" + (f"?m={message_id}" if message_id else "")
        return self.post(path, {"MessageSid": sid, "MessageStatus": status, **extra})


@pytest.fixture
def twilio_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Webhooks on (auth token and public URL), the hotline open all day, outbound SMS still
    outbox-only (no account SID): nothing here may reach Twilio's servers."""
    values = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "OPERATOR_PHONE": OPERATOR,
        "HOTLINE_OPEN": "00:00",
        "HOTLINE_CLOSE": "24:00",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


@pytest.fixture
def twilio(twilio_env: dict[str, str], client: httpx.Client) -> Twilio:
    return Twilio(client)
