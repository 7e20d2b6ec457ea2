"""API shapes of the provider registry (request bodies never bind to tables)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dispatch.core.validation import ClockTime, Latitude, Longitude, Name, PatchModel, PhoneNumber, Township
from services.models import ProviderKind, Skill


class Hours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open: ClockTime = "00:00"
    close: ClockTime = "24:00"

    @model_validator(mode="after")
    def _ordered(self) -> Hours:
        if self.close <= self.open:
            raise ValueError("hours.close must be after hours.open")
        return self


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: ProviderKind
    township: Township
    address: str = Field(default="", max_length=200)
    lat: Latitude
    lon: Longitude
    phone: PhoneNumber
    capacity: int = Field(ge=1, le=10_000)
    service_radius_km: float = Field(gt=0, le=100, allow_inf_nan=False)
    skills: list[Skill] = Field(default_factory=list, max_length=10)
    hours: Hours = Field(default_factory=Hours)


class ProviderUpdate(PatchModel):
    name: Name | None = None
    township: Township | None = None
    address: str | None = Field(default=None, max_length=200)
    lat: Latitude | None = None
    lon: Longitude | None = None
    phone: PhoneNumber | None = None
    capacity: int | None = Field(default=None, ge=1, le=10_000)
    service_radius_km: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    skills: list[Skill] | None = Field(default=None, max_length=10)
    hours: Hours | None = None
    active: bool | None = None


class ProviderRead(BaseModel):
    id: int
    name: str
    kind: ProviderKind
    township: str
    address: str
    lat: float
    lon: float
    phone: str
    capacity: int
    service_radius_km: float
    skills: list[str]
    hours: Hours
    active: bool


class CaregiverCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    phone: PhoneNumber
    skills: list[Skill] = Field(default_factory=list, max_length=10)
    shift_start: ClockTime | None = None
    shift_end: ClockTime | None = None

    @model_validator(mode="after")
    def _shift(self) -> CaregiverCreate:
        if (self.shift_start is None) != (self.shift_end is None):
            raise ValueError("give both shift_start and shift_end, or neither")
        if self.shift_start and self.shift_end and self.shift_end <= self.shift_start:
            raise ValueError("shift_end must be after shift_start")
        return self


class CaregiverRead(BaseModel):
    id: int
    provider_id: int
    name: str
    phone: str | None
    skills: list[str]
    shift_start: str | None
    shift_end: str | None
    active: bool
