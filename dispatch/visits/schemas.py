"""API shapes of visits, corrections, departures, feedback and the family's view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from dispatch.core.validation import Latitude, Longitude
from dispatch.elders.models import Consent
from dispatch.orders.lifecycle import RequestStatus
from dispatch.orders.models import RequestKind
from dispatch.visits.models import CorrectionDecision, VisitOutcome, VisitPlace, VisitReview


def _moment(value: datetime) -> datetime:
    # Wide on purpose: a phone reset to 1970 is kept (and flagged), not refused; only values a
    # clock cannot show (and that would overflow on the way to UTC) are.
    if not 1900 <= value.year <= 2200:
        raise ValueError("a time between the years 1900 and 2200")
    return value


def _day(value: date) -> date:
    if not date(2000, 1, 1) <= value <= date(2100, 12, 31):
        raise ValueError("a day between 2000-01-01 and 2100-12-31")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_moment)]
LocalDay = Annotated[date, AfterValidator(_day)]

DEVICE_AT = Field(
    default=None,
    description="The phone's own clock when the button was pressed (ISO 8601 with offset). "
    "More than EVV_MAX_CLOCK_SKEW_SECONDS off the server's time flags the visit `clock_skew`.",
)


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: Latitude
    lon: Longitude
    device_at: Moment | None = DEVICE_AT


class CheckOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: Latitude
    lon: Longitude
    summary: str = Field(default="", max_length=1000)
    outcome: VisitOutcome = Field(
        default=VisitOutcome.COMPLETED,
        description="Anything but `completed` means the visit could not happen: the request is "
        "cancelled (never completed) and a welfare check goes to the operators. Such a check-out "
        "may also close an assigned job never checked in (nobody opened the door).",
    )
    device_at: Moment | None = DEVICE_AT


class OnTheWay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    eta_minutes: int | None = Field(default=None, ge=1, le=240)


class DepartureRead(BaseModel):
    request_id: int
    at: datetime
    eta_minutes: int | None


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=500)


class FeedbackRead(BaseModel):
    id: int
    request_id: int
    provider_id: int | None
    rating: int
    comment: str
    created_at: datetime


# ---- verification records ---------------------------------------------------------------


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: CorrectionDecision
    reason: str = Field(min_length=4, max_length=500, pattern=r"\S", description="Why; kept forever.")
    corrected_check_in_at: Moment | None = None
    corrected_check_out_at: Moment | None = None

    @model_validator(mode="after")
    def _order(self) -> CorrectionIn:
        start, end = self.corrected_check_in_at, self.corrected_check_out_at
        if start and end and end < start:
            raise ValueError("corrected_check_out_at must not be before corrected_check_in_at")
        return self


class CorrectionRead(BaseModel):
    id: int
    visit_id: int
    decision: CorrectionDecision
    reason: str
    corrected_check_in_at: datetime | None
    corrected_check_out_at: datetime | None
    flags_reviewed: list[str]
    verified_before: bool
    verified_after: bool
    by: str
    created_at: datetime


class VisitRead(BaseModel):
    """One visit as recorded, plus where it stands. The recorded facts never change; the
    `effective_*` times are the latest approved correction's, where it gave any."""

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
    place: VisitPlace = VisitPlace.ELDER_HOME
    flagged: bool = False
    review: VisitReview = VisitReview.CLEAN
    check_in_skew_seconds: float | None = None
    check_out_skew_seconds: float | None = None
    duration_minutes: float | None = None
    effective_check_in_at: datetime | None = None
    effective_check_out_at: datetime | None = None
    township: str | None = None
    elder_name: str | None = Field(default=None, description="Masked (张*英) for provider accounts.")
    provider_name: str | None = None
    caregiver_name: str | None = None
    corrections: list[CorrectionRead] = Field(default_factory=list)


# ---- the family's view ------------------------------------------------------------------


class FamilyStep(BaseModel):
    """One step of a request as a relative reads it: requested, offered, accepted, on_the_way,
    arrived, finished, not_served, cancelled, escalated."""

    step: str
    at: datetime
    detail: str | None = None


class FamilyRequestRead(BaseModel):
    id: int
    elder_id: int
    kind: RequestKind
    status: RequestStatus
    priority: str
    window_start: datetime
    window_end: datetime
    created_at: datetime
    slot: str | None
    delivery: bool | None
    welfare: bool
    provider_name: str | None
    caregiver_name: str | None = Field(description="Masked (王*).")
    steps: list[FamilyStep]
    outcome: VisitOutcome | None
    summary: str | None = Field(description="The visit's summary; only where the elder consented.")
    summary_withheld: bool = Field(description="A summary exists, but the consent is `status` only.")
    rating: int | None
    can_rate: bool
    last_seq: int


class FamilyElder(BaseModel):
    id: int
    name: str
    township: str
    relation: str
    consent: Consent


class FamilyOverview(BaseModel):
    since: int = Field(description="Open the websocket with since=<this>: nothing later is missed.")
    elders: list[FamilyElder]
    requests: list[FamilyRequestRead]
