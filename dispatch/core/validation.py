"""Field types shared by the API schemas: each one rejects bad input with a reason."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dispatch.core.geo import DISTRICT_BOUNDS, TOWNSHIPS

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def normalise_phone(raw: str) -> str:
    """E.164 for Chinese numbers: '138 0000 0001', '+86 138…', '0086…' and '022-6800 0000' alike."""
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        number = digits
    elif digits.startswith("00"):
        number = digits[2:]
    elif digits.startswith("86") and len(digits) == 13:
        number = digits
    elif digits.startswith("0"):
        number = "86" + digits[1:]  # landline with trunk prefix, e.g. 022 for Tianjin
    else:
        number = "86" + digits
    if not 8 <= len(number) <= 15:
        raise ValueError("not a phone number (expected e.g. +8613800000001 or 022-68000000)")
    return "+" + number


def _phone(value: str) -> str:
    return normalise_phone(value)


def _township(value: str) -> str:
    if value not in TOWNSHIPS:
        raise ValueError(f"unknown township {value!r}; Jinghai has: {', '.join(TOWNSHIPS)}")
    return value


def _lat(value: float) -> float:
    low, high = DISTRICT_BOUNDS["lat"]
    if not low <= value <= high:
        raise ValueError(f"latitude {value} is outside Jinghai District ({low}..{high})")
    return value


def _lon(value: float) -> float:
    low, high = DISTRICT_BOUNDS["lon"]
    if not low <= value <= high:
        raise ValueError(f"longitude {value} is outside Jinghai District ({low}..{high})")
    return value


def _hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError("time must be HH:MM between 00:00 and 24:00")
    return value


PhoneNumber = Annotated[str, Field(min_length=3, max_length=32), AfterValidator(_phone)]
Township = Annotated[str, AfterValidator(_township)]
# Finite coordinates on Earth first, then inside the district.
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False), AfterValidator(_lat)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False), AfterValidator(_lon)]
ClockTime = Annotated[str, AfterValidator(_hhmm)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]


class PatchModel(BaseModel):
    """A PATCH body: fields left out stay as they are; an explicit null is refused, not applied."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(k for k, v in data.items() if v is None)
            if nulls:
                raise ValueError(f"null is not a value for: {', '.join(nulls)} (leave the field out instead)")
        return data
