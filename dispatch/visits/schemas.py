"""API shapes of visits and feedback."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core.validation import Latitude, Longitude


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: Latitude
    lon: Longitude


class CheckOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: Latitude
    lon: Longitude
    summary: str = Field(default="", max_length=1000)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=500)


class VisitRead(BaseModel):
    id: int
    request_id: int
    elder_id: int
    provider_id: int
    caregiver_id: int | None
    kind: str
    check_in_at: datetime
    check_in_lat: float
    check_in_lon: float
    check_in_distance_m: float
    check_out_at: datetime | None
    check_out_lat: float | None
    check_out_lon: float | None
    check_out_distance_m: float | None
    summary: str | None
    flags: list[str]
    outcome: str = "completed"
    verified: bool = False
    check_in_device_at: datetime | None = None
    check_out_device_at: datetime | None = None


class FeedbackRead(BaseModel):
    id: int
    request_id: int
    provider_id: int | None
    rating: int
    comment: str
    created_at: datetime
