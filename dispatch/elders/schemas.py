"""API shapes of the elder registry."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dispatch.core.validation import Latitude, Longitude, Name, PatchModel, PhoneNumber, Township
from dispatch.elders.models import Assistance, CareLevel, Consent

_OLDEST = date(1900, 1, 1)


def _birth_date(value: date | None) -> date | None:
    if value is not None and not _OLDEST <= value <= date.today():
        raise ValueError("birth_date must be between 1900-01-01 and today")
    return value


class ElderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    phone: PhoneNumber | None = None
    township: Township
    address: str = Field(default="", max_length=200)
    lat: Latitude
    lon: Longitude
    care_level: CareLevel = CareLevel.SELF_CARE
    lives_alone: bool = False
    assistance: Assistance = Assistance.NONE
    birth_date: date | None = None
    notes: str = Field(default="", max_length=1000)

    _check_birth = field_validator("birth_date")(_birth_date)


class ElderUpdate(PatchModel):
    name: Name | None = None
    phone: PhoneNumber | None = None
    township: Township | None = None
    address: str | None = Field(default=None, max_length=200)
    lat: Latitude | None = None
    lon: Longitude | None = None
    care_level: CareLevel | None = None
    lives_alone: bool | None = None
    assistance: Assistance | None = None
    birth_date: date | None = None
    notes: str | None = Field(default=None, max_length=1000)
    deceased_on: date | None = None

    _check_birth = field_validator("birth_date")(_birth_date)


class FamilyMember(BaseModel):
    user_id: int
    username: str
    display_name: str
    relation: str
    consent: Consent
    phone: str | None


class ElderRead(BaseModel):
    id: int
    name: str
    phone: str | None = Field(description="Masked (138****0001) for every role but operator and admin.")
    township: str
    address: str
    lat: float
    lon: float
    care_level: CareLevel
    lives_alone: bool
    assistance: Assistance
    birth_date: date | None
    age: int | None
    notes: str | None = Field(description="Care notes; only for staff and relatives the elder consented to.")
    deceased_on: date | None
    family: list[FamilyMember]


class FamilyLinkCreate(BaseModel):
    """Link a relative, with what the elder consented this relative may see: `status` (where
    requests and visits stand) or `status_and_notes` (also care notes and visit summaries)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    relation: str = Field(default="", max_length=20)
    consent: Consent = Consent.STATUS


class FamilyLinkUpdate(PatchModel):
    """The elder changed their mind (or the relation was mistyped): the change is audited."""

    relation: str | None = Field(default=None, max_length=20)
    consent: Consent | None = None
