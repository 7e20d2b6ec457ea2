"""Provider registry tables."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import JSONType, UTCDateTime


class ProviderKind(StrEnum):
    DAY_CARE = "day_care"
    CANTEEN = "canteen"
    HOME_CARE = "home_care"


class Skill(StrEnum):
    BATHING = "bathing"
    CLEANING = "cleaning"
    NURSING = "nursing"
    REHAB = "rehab"
    MEAL_DELIVERY = "meal_delivery"


class Provider(SQLModel, table=True):
    __tablename__ = "provider"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    kind: str = Field(max_length=16, index=True)
    township: str = Field(max_length=20, index=True)
    address: str = Field(default="", max_length=200)
    lat: float
    lon: float
    phone: str = Field(default="", max_length=20)
    # Seats per day (day_care), meals per slot (canteen), jobs at once (home_care).
    capacity: int
    service_radius_km: float
    skills: list[str] = Field(default_factory=list, sa_type=JSONType)
    open_time: str = Field(default="00:00", max_length=5)
    close_time: str = Field(default="24:00", max_length=5)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Caregiver(SQLModel, table=True):
    __tablename__ = "caregiver"

    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(foreign_key="provider.id", index=True)
    name: str = Field(max_length=64)
    phone: str = Field(default="", max_length=20)
    skills: list[str] = Field(default_factory=list, sa_type=JSONType)
    # The caregiver's shift, local time; None means the provider's hours.
    shift_start: str | None = Field(default=None, max_length=5)
    shift_end: str | None = Field(default=None, max_length=5)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
