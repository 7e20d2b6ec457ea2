"""The message outbox: every SMS the platform sent or would send, with its delivery status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import UTCDateTime


class MessageStatus(StrEnum):
    QUEUED = "queued"  # written, not yet handed to a gateway
    SENDING = "sending"  # a send job holds it
    OUTBOX_ONLY = "outbox_only"  # no gateway configured: kept here, visible in the console
    SENT = "sent"  # accepted by Twilio
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


# Delivery callbacks only move a message forward along this order (Twilio may retry or reorder).
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.OUTBOX_ONLY: 2,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
}


class Message(SQLModel, table=True):
    __tablename__ = "message"

    id: int | None = Field(default=None, primary_key=True)
    to_phone: str = Field(max_length=20)
    body: str = Field(max_length=480)
    # Why it was sent: offer, assigned, on_the_way, completed, escalated, emergency, welfare, reply.
    purpose: str = Field(max_length=20, index=True)
    audience: str = Field(max_length=12)  # provider, family, elder, operator
    request_id: int | None = Field(default=None, foreign_key="service_request.id", index=True)
    elder_id: int | None = Field(default=None, foreign_key="elder.id", index=True)
    provider_id: int | None = Field(default=None, foreign_key="provider.id")
    status: str = Field(default=MessageStatus.QUEUED, max_length=12, index=True)
    attempts: int = 0
    provider_sid: str | None = Field(default=None, max_length=64, unique=True)
    error: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(slots=True)
class OwedText:
    """A text owed, not yet queued: what a rule decided to send (notify/rules.py), handed to
    `service.queue_sms_many`, which writes its `Message` row and sets `id`. A plain record, not
    the table model: the matcher and the accepts prepare one per offer or relative, and building
    a SQLModel object (its validation) cost ~65 us each, a tenth of the matcher's CPU per request."""

    to_phone: str
    body: str
    purpose: str
    audience: str
    request_id: int | None = None
    elder_id: int | None = None
    provider_id: int | None = None
    id: int | None = None  # the Message row's, once queued
