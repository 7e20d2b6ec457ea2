"""The SMS gateway interface. Implementations live where their SDK may be imported
(hotline/gateway.py for Twilio); the outbox-only one is here and needs nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    status: str  # a MessageStatus value
    sid: str | None = None
    error: str = ""


class SmsGateway(Protocol):
    def send(self, *, to: str, body: str, message_id: int) -> SendResult: ...


class OutboxOnlyGateway:
    """Used when Twilio is not configured: nothing leaves the building; the console shows it."""

    def send(self, *, to: str, body: str, message_id: int) -> SendResult:
        return SendResult(status="outbox_only")
