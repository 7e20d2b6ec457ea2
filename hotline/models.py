"""Inbound Twilio webhooks, one row per effect: the unique `dedupe_key` (CallSid, +Digits,
MessageSid) makes Twilio's retries replay the stored answer instead of acting twice."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import UTCDateTime


class WebhookKind(StrEnum):
    VOICE = "voice"
    GATHER = "gather"
    SMS = "sms"
    STATUS = "status"


class InboundWebhook(SQLModel, table=True):
    __tablename__ = "hotline_webhook"

    id: int | None = Field(default=None, primary_key=True)
    # voice:<CallSid> | gather:<CallSid>:<attempt>:<Digits> | sms:<MessageSid> | status:<MessageSid>:<status>
    dedupe_key: str = Field(max_length=120, unique=True)
    kind: str = Field(max_length=8, index=True)
    sid: str = Field(max_length=64, index=True)
    from_phone: str = Field(default="", max_length=32)
    digits: str = Field(default="", max_length=8)
    # What the webhook did: menu, operator:<why>, request, emergency, accepted, declined, help, ignored...
    outcome: str = Field(default="", max_length=40)
    elder_id: int | None = Field(default=None, foreign_key="elder.id")
    provider_id: int | None = Field(default=None, foreign_key="provider.id")
    request_id: int | None = Field(default=None, foreign_key="service_request.id")
    # The TwiML answered the first time, answered again to a retry.
    response: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
