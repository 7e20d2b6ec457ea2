"""SMS gateways: Twilio's REST client when configured, else the outbox-only gateway.
This module is the only place that talks to Twilio's REST API."""

from __future__ import annotations

from functools import lru_cache

from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from dispatch.core.config import Settings, get_settings
from dispatch.notify.gateway import OutboxOnlyGateway, SendResult, SmsGateway

STATUS_CALLBACK_PATH = "/hotline/twilio/status"


class TwilioGateway:
    """Sends through Twilio's Messages API, asking for delivery callbacks."""

    def __init__(self, settings: Settings, http_client: HttpClient | None = None) -> None:
        assert settings.twilio_auth_token is not None
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=http_client or TwilioHttpClient(timeout=10),
        )
        self.from_number = settings.twilio_from_number
        base = settings.public_base_url.rstrip("/")
        self.status_callback = f"{base}{STATUS_CALLBACK_PATH}" if base else None

    def send(self, *, to: str, body: str, message_id: int) -> SendResult:
        options: dict[str, str] = {"to": to, "from_": self.from_number, "body": body}
        if self.status_callback:
            # Our id rides along, so a callback that overtakes the job recording the SID still lands.
            options["status_callback"] = f"{self.status_callback}?m={message_id}"
        try:
            sent = self.client.messages.create(**options)
        except TwilioRestException as exc:
            # A 4xx from Twilio (bad number, blocked) will not get better by retrying.
            if exc.status and 400 <= exc.status < 500:
                return SendResult(status="failed", error=f"twilio {exc.code}: {exc.msg}"[:200])
            raise
        return SendResult(status="sent", sid=sent.sid)


@lru_cache(maxsize=1)
def _twilio(account_sid: str, from_number: str) -> TwilioGateway:
    return TwilioGateway(get_settings())


def get_gateway() -> SmsGateway:
    settings = get_settings()
    if not settings.twilio_enabled:
        return OutboxOnlyGateway()
    return _twilio(settings.twilio_account_sid, settings.twilio_from_number)
