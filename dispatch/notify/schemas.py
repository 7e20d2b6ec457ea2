"""API shapes of the message outbox."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from dispatch.notify.models import MessageStatus


class MessageRead(BaseModel):
    id: int
    to: str
    body: str
    purpose: str
    audience: str
    request_id: int | None
    elder_id: int | None
    status: MessageStatus
    attempts: int
    error: str
    created_at: datetime
    sent_at: datetime | None
