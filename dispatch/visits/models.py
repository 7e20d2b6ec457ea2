"""Visit records and feedback."""

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


class Visit(SQLModel, table=True):
    """The six facts of electronic visit verification: which service, for whom, by whom,
    date, start and end time, and where (at both ends)."""

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
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Feedback(SQLModel, table=True):
    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", unique=True)
    provider_id: int | None = Field(default=None, foreign_key="provider.id", index=True)
    user_id: int = Field(foreign_key="user_account.id")
    rating: int
    comment: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
