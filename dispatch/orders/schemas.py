"""API shapes of service requests and offers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from dispatch.core.validation import MAX_INT
from dispatch.orders.lifecycle import RequestStatus
from dispatch.orders.models import Channel, OfferStatus, Priority, RequestKind
from services.models import Skill


class RequestDetails(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot: Literal["lunch", "dinner"] | None = None
    delivery: bool | None = None
    skills: list[Skill] = Field(default_factory=list, max_length=5)


class RequestDetailsRead(BaseModel):
    """Details as stored: what the caller gave, plus what the platform added (a welfare check's
    reason, the plan a scheduled request came from)."""

    model_config = ConfigDict(extra="allow")

    slot: Literal["lunch", "dinner"] | None = None
    delivery: bool | None = None
    skills: list[str] = Field(default_factory=list)
    welfare: bool | None = None
    reason: str | None = None


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    elder_id: int = Field(ge=1, le=MAX_INT)
    kind: RequestKind
    details: RequestDetails = Field(default_factory=RequestDetails)
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    priority: Priority | None = None
    channel: Channel | None = None
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _window(self) -> RequestCreate:
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("give both window_start and window_end, or neither")
        if self.window_start and self.window_end:
            if self.window_end <= self.window_start:
                raise ValueError("window_end must be after window_start")
            if (self.window_end - self.window_start).days > 1:
                raise ValueError("a window may span at most one day")
        return self


class TimelineEntry(BaseModel):
    seq: int
    type: str
    status: str | None
    at: datetime


class RequestRead(BaseModel):
    id: int
    elder_id: int
    kind: RequestKind
    priority: Priority
    channel: Channel
    status: RequestStatus
    provider_id: int | None
    caregiver_id: int | None
    created_at: datetime
    updated_at: datetime
    timeline: list[TimelineEntry]
    details: RequestDetailsRead
    window_start: datetime
    window_end: datetime
    note: str
    township: str
    escalation_reason: str | None
    due_at: datetime


class ElderSummary(BaseModel):
    """What a provider is shown of the elder: enough to serve, nothing more."""

    name: str
    township: str
    address: str
    phone: str | None


class OfferRead(BaseModel):
    id: int
    request_id: int
    provider_id: int
    caregiver_id: int | None
    status: OfferStatus
    expires_at: datetime
    created_at: datetime
    kind: RequestKind
    window_start: datetime
    window_end: datetime
    distance_km: float | None
    score: float | None
    score_parts: dict[str, float]
    reason: str
    elder: ElderSummary


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200)


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: int = Field(ge=1, le=MAX_INT)
    caregiver_id: int | None = Field(default=None, ge=1, le=MAX_INT)


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200)
