"""Visit records (EVV), their corrections, departures ("on the way") and feedback."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import JSONType, UTCDateTime


class VisitOutcome(StrEnum):
    """How a visit ended. Only `completed` counts as served; the others raise a welfare check."""

    COMPLETED = "completed"
    NOT_HOME = "not_home"
    REFUSED = "refused"
    IN_HOSPITAL = "in_hospital"


class VisitPlace(StrEnum):
    """Where a visit must happen: at the elder's home (home care, visits, delivered meals) or at
    the provider's own site (day care, a meal eaten in the canteen)."""

    ELDER_HOME = "elder_home"
    PROVIDER_SITE = "provider_site"


class VisitFlag(StrEnum):
    LOCATION_MISMATCH = "location_mismatch"  # a position more than EVV_MAX_DISTANCE_M from the place
    CLOCK_SKEW = "clock_skew"  # the phone's clock more than EVV_MAX_CLOCK_SKEW_SECONDS off the server's
    TOO_SHORT = "too_short"  # shorter than the kind's EVV_MIN_MINUTES_*


class VisitReview(StrEnum):
    """Where a visit stands with the operators: `open` flags wait for a correction."""

    CLEAN = "clean"
    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"


class Visit(SQLModel, table=True):
    """The six facts of electronic visit verification: which service, for whom, by whom,
    date, start and end time, and where (at both ends). Written by the phone's check-in and
    check-out and never changed afterwards: an operator's correction is a row of its own."""

    __tablename__ = "visit"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", unique=True)
    elder_id: int = Field(foreign_key="elder.id", index=True)
    provider_id: int = Field(foreign_key="provider.id", index=True)
    caregiver_id: int | None = Field(default=None, foreign_key="caregiver.id")
    kind: str = Field(max_length=16)
    check_in_at: datetime = Field(sa_type=UTCDateTime, index=True)
    check_in_lat: float
    check_in_lon: float
    check_in_distance_m: float
    check_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    check_out_lat: float | None = None
    check_out_lon: float | None = None
    check_out_distance_m: float | None = None
    summary: str = Field(default="", max_length=1000)
    flags: list[str] = Field(default_factory=list, sa_type=JSONType)
    # The phone's own clock at both ends, kept beside the server's (check_in_at/check_out_at).
    check_in_device_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    check_out_device_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(default=VisitOutcome.COMPLETED, max_length=16)
    # Completed with no open flag, or flagged and approved by an operator: only a verified
    # visit draws its price from the elder's subsidy.
    verified: bool = Field(default=False, index=True)
    # The place the distances were measured from, as it was at the time of the visit.
    place: str = Field(default=VisitPlace.ELDER_HOME, max_length=16)
    place_lat: float | None = None
    place_lon: float | None = None
    # Derived from `flags` and the latest correction, kept for the operators' list.
    flagged: bool = Field(default=False, index=True)
    review: str = Field(default=VisitReview.CLEAN, max_length=10, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CorrectionDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class VisitCorrection(SQLModel, table=True):
    """An operator's review of a visit, with a reason: approve (the visit counts, possibly with
    corrected times) or reject (it does not). Append-only (the database refuses UPDATE and
    DELETE); the latest row decides, every earlier one stays readable."""

    __tablename__ = "visit_correction"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visit.id", index=True)
    decision: str = Field(max_length=8)
    reason: str = Field(max_length=500)
    # What the operator established, e.g. from a phone call; None keeps the recorded time.
    corrected_check_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    corrected_check_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    flags_reviewed: list[str] = Field(default_factory=list, sa_type=JSONType)
    verified_before: bool
    verified_after: bool
    user_id: int = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Departure(SQLModel, table=True):
    """The caregiver set off to an assigned job ("on the way"): the family is texted once."""

    __tablename__ = "visit_departure"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", unique=True)
    provider_id: int = Field(foreign_key="provider.id")
    caregiver_id: int | None = Field(default=None, foreign_key="caregiver.id")
    user_id: int = Field(foreign_key="user_account.id")
    eta_minutes: int | None = None
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Feedback(SQLModel, table=True):
    """A rating of a completed request; the matcher reads these as the provider's record."""

    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", unique=True)
    provider_id: int | None = Field(default=None, foreign_key="provider.id", index=True)
    user_id: int = Field(foreign_key="user_account.id")
    rating: int
    comment: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
