"""Welfare checks raised, one per cause (the dedupe key), never twice."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import UTCDateTime


class WelfareCheck(SQLModel, table=True):
    __tablename__ = "welfare_check"

    id: int | None = Field(default=None, primary_key=True)
    elder_id: int = Field(foreign_key="elder.id", index=True)
    # The urgent `visit` request put in front of the operators.
    request_id: int = Field(foreign_key="service_request.id")
    # What went wrong: failed_visit:not_home, meal_not_delivered, rhythm_overdue, ...
    reason: str = Field(max_length=60)
    source_request_id: int | None = Field(default=None, foreign_key="service_request.id")
    # One check per cause, e.g. "failed-visit:812" or "rhythm:55:2026-11-28".
    dedupe_key: str = Field(max_length=120, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
