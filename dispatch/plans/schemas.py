"""API shapes of service plans."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dispatch.core.validation import MAX_INT, ClockTime
from dispatch.plans.calendar import DEFAULT_EVERY_DAYS
from dispatch.plans.models import PlanKind, PlanStatus
from services.models import Skill

Weekday = Literal[1, 2, 3, 4, 5, 6, 7]


class PlanCreate(BaseModel):
    """A plan. Meals, home care and day care need `weekdays` (1 = Monday ... 7 = Sunday); a visit
    plan comes every `every_days` days from `starts_on`. Meals take their slot's window
    (lunch 11:00-12:30, dinner 17:00-18:30); the others may give `start_time`/`end_time`."""

    model_config = ConfigDict(extra="forbid")

    elder_id: int = Field(ge=1, le=MAX_INT)
    kind: PlanKind
    weekdays: list[Weekday] = Field(default_factory=list, max_length=7)
    every_days: int | None = Field(default=None, ge=1, le=90)
    slot: Literal["lunch", "dinner"] | None = None
    delivery: bool | None = None
    skills: list[Skill] = Field(default_factory=list, max_length=5)
    start_time: ClockTime | None = None
    end_time: ClockTime | None = None
    starts_on: date | None = Field(default=None, description="Default: today (Asia/Shanghai).")
    ends_on: date | None = None
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> PlanCreate:
        kind = self.kind
        if kind == PlanKind.VISIT:
            if self.weekdays:
                raise ValueError("a visit plan comes every_days days; weekdays are for the other kinds")
            self.every_days = self.every_days or DEFAULT_EVERY_DAYS
        else:
            if not self.weekdays:
                raise ValueError(f"a {kind.value} plan needs weekdays (1 = Monday ... 7 = Sunday)")
            if self.every_days is not None:
                raise ValueError("every_days is for visit plans")
            self.weekdays = sorted(set(self.weekdays))
        if kind != PlanKind.MEAL and (self.slot is not None or self.delivery is not None):
            raise ValueError("slot and delivery are for meal plans")
        if kind == PlanKind.MEAL and (self.start_time or self.end_time):
            raise ValueError("a meal plan takes its slot's window; give slot instead of times")
        if kind != PlanKind.HOME_CARE and self.skills:
            raise ValueError("skills are for home-care plans")
        if (self.start_time is None) != (self.end_time is None):
            raise ValueError("give both start_time and end_time, or neither")
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class PlanAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200)


class PlanRead(BaseModel):
    id: int
    elder_id: int
    elder_name: str
    township: str
    kind: PlanKind
    weekdays: list[int]
    every_days: int | None
    slot: str | None
    delivery: bool | None
    skills: list[str]
    start_time: str
    end_time: str
    starts_on: date
    ends_on: date | None
    status: PlanStatus
    status_reason: str
    note: str
    next_on: date | None = Field(description="The next day a request will be created for (if active).")
    created_at: datetime
    updated_at: datetime


class OccurrenceRead(BaseModel):
    plan_id: int
    occurs_on: date
    request_id: int
    status: str
    window_start: datetime
    window_end: datetime
    escalation_reason: str | None
