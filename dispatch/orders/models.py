"""Service request tables: the request, its offers, and idempotency records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import JSONType, UTCDateTime


class RequestKind(StrEnum):
    MEAL = "meal"
    DAY_CARE = "day_care"
    HOME_CARE = "home_care"
    VISIT = "visit"
    EMERGENCY = "emergency"


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Channel(StrEnum):
    HOTLINE = "hotline"
    APP = "app"
    IVR = "ivr"
    SMS = "sms"
    SCHEDULED = "scheduled"


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class ServiceRequest(SQLModel, table=True):
    __tablename__ = "service_request"
    __table_args__ = (
        Index("ix_request_status_created", "status", "created_at"),
        # A provider's capacity in use (matching/capacity.py load_holdings): seeks, not a walk
        # of every open job; it serves every lookup by provider_id alone too. Partial: a request
        # has a provider from its assignment on, so intake and offers never write to it.
        Index(
            "ix_request_provider_status",
            "provider_id",
            "status",
            "window_start",
            sqlite_where=text("provider_id IS NOT NULL"),
            postgresql_where=text("provider_id IS NOT NULL"),
        ),
        # The completed jobs whose day still counts (load_holdings for every provider): a range
        # of this index, not a walk of every request ever completed. Written once per request.
        Index(
            "ix_request_completed_window",
            "window_start",
            sqlite_where=text("status = 'completed'"),
            postgresql_where=text("status = 'completed'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    elder_id: int = Field(foreign_key="elder.id", index=True)
    kind: str = Field(max_length=16, index=True)
    priority: str = Field(default=Priority.NORMAL, max_length=8)
    channel: str = Field(default=Channel.HOTLINE, max_length=12)
    status: str = Field(max_length=12)
    # Optimistic concurrency: every transition is UPDATE ... WHERE status = ? AND version = ?.
    version: int = 0
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", max_length=500)
    township: str = Field(max_length=20, index=True)
    provider_id: int | None = Field(default=None, foreign_key="provider.id")
    caregiver_id: int | None = Field(default=None, foreign_key="caregiver.id")
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    escalation_reason: str | None = Field(default=None, max_length=40)
    # When the request must be placed by, else it is put in front of the operators.
    due_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Offer(SQLModel, table=True):
    __tablename__ = "offer"
    __table_args__ = (
        # Exactly one offer of a request can ever be accepted, and one is pending at a time.
        Index(
            "uq_offer_one_accepted",
            "request_id",
            unique=True,
            sqlite_where=text("status = 'accepted'"),
            postgresql_where=text("status = 'accepted'"),
        ),
        Index(
            "uq_offer_one_pending",
            "request_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_offer_provider_status", "provider_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", index=True)
    provider_id: int = Field(foreign_key="provider.id")
    caregiver_id: int | None = Field(default=None, foreign_key="caregiver.id")
    status: str = Field(default=OfferStatus.PENDING, max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    responded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(default="", max_length=200)
    distance_km: float | None = None
    # Why this provider: the score and its parts, for the operator.
    score: float | None = None
    score_parts: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    manual: bool = False


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id")
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64)
    request_id: int = Field(foreign_key="service_request.id")
    response: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
