"""API shapes of the provider page: only what a job needs, nothing more."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from dispatch.orders.lifecycle import RequestStatus
from dispatch.orders.models import RequestKind
from dispatch.orders.schemas import OfferRead
from dispatch.visits.models import VisitOutcome, VisitPlace, VisitReview


class JobElder(BaseModel):
    """The elder as the job needs them. While the job is open: the full name (to greet and
    confirm at the door), the address, and the place's coordinates for the map; once it is over,
    the masked name and township only. The phone is always masked here; the full number is given
    by `POST /api/field/jobs/{id}/phone`, for an open job only, and audited."""

    name: str
    township: str
    address: str | None
    phone: str | None
    lat: float | None
    lon: float | None


class JobCare(BaseModel):
    """What the caregiver needs to do the job: the care level (help walking, lifting), the
    operator's note on this request (what this job needs to know: "低糖饮食", "带防滑垫"; only
    while it is open), and the service's details. The elder's registry care notes (health data,
    PIPL art. 28) stay with staff and consented relatives; no assistance category, birth date,
    family or other records either."""

    care_level: str
    note: str = Field(description="The operator's note for this job; empty once it is over.")
    slot: str | None
    delivery: bool | None
    skills: list[str]


class JobVisit(BaseModel):
    check_in_at: datetime
    check_out_at: datetime | None
    flags: list[str]
    outcome: VisitOutcome
    review: VisitReview


class FieldJob(BaseModel):
    request_id: int
    kind: RequestKind
    status: RequestStatus
    priority: str
    window_start: datetime
    window_end: datetime
    place: VisitPlace
    elder: JobElder
    care: JobCare
    caregiver_id: int | None
    caregiver_name: str | None
    departed_at: datetime | None
    eta_minutes: int | None
    visit: JobVisit | None
    phone_revealable: bool


class MealSlot(BaseModel):
    slot: str
    dine_in: int = Field(description="Meals eaten in the canteen (assigned, served or being served).")
    delivery: int = Field(description="Meals to deliver.")
    done: int
    cancelled: int


class Attendance(BaseModel):
    expected: int
    arrived: int
    left: int
    absent: int


class FieldProvider(BaseModel):
    id: int
    name: str
    kind: str
    lat: float
    lon: float


class FieldCaregiver(BaseModel):
    id: int
    name: str


class FieldDay(BaseModel):
    since: int = Field(description="Open the websocket with since=<this>: nothing later is missed.")
    day: date
    provider: FieldProvider
    caregiver: FieldCaregiver | None
    jobs: list[FieldJob] = Field(description="Open jobs (any day), then the day's closed ones; by window.")
    meals: list[MealSlot]
    attendance: Attendance


class FieldOffer(OfferRead):
    """An offer as its provider sees it (elder masked); `responded_at` says when it ended."""

    responded_at: datetime | None


class PhoneRead(BaseModel):
    request_id: int
    phone: str | None
