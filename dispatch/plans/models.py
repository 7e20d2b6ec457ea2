"""Recurring service plans and the occurrences they have turned into requests."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import JSONType, UTCDateTime


class PlanKind(StrEnum):
    MEAL = "meal"
    HOME_CARE = "home_care"
    DAY_CARE = "day_care"
    VISIT = "visit"


class PlanStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class ServicePlan(SQLModel, table=True):
    """What an elder receives without anyone having to call: weekday meals, home care or day care
    on given weekdays, or a welfare visit every `every_days` days."""

    __tablename__ = "service_plan"

    id: int | None = Field(default=None, primary_key=True)
    elder_id: int = Field(foreign_key="elder.id", index=True)
    kind: str = Field(max_length=16)
    # ISO weekdays (1 = Monday ... 7 = Sunday) for meal, home care and day care.
    weekdays: list[int] = Field(default_factory=list, sa_type=JSONType)
    # Visit plans: one visit every this many days, counted from starts_on.
    every_days: int | None = None
    # As a request's details: slot and delivery (meals), skills (home care).
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    # The service window, local time (HH:MM); meals take their slot's window.
    start_time: str = Field(max_length=5)
    end_time: str = Field(max_length=5)
    starts_on: date
    ends_on: date | None = None
    status: str = Field(default=PlanStatus.ACTIVE, max_length=8, index=True)
    status_reason: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=500)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PlanOccurrence(SQLModel, table=True):
    """One day of a plan, turned into one request. The unique key is the idempotency guarantee:
    two scheduler runs at once, or one restarted mid-way, can never create a day twice."""

    __tablename__ = "plan_occurrence"
    __table_args__ = (UniqueConstraint("plan_id", "occurs_on", name="uq_plan_occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="service_plan.id", index=True)
    occurs_on: date = Field(index=True)
    request_id: int = Field(foreign_key="service_request.id", unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
