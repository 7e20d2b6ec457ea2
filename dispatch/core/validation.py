"""Field types shared by the API schemas: each one rejects bad input with a reason."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from dispatch.core.geo import DISTRICT_BOUNDS, TOWNSHIPS

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


# The canonical forms, as documented in the OpenAPI schema: E.164, a Chinese mobile, or a
# Chinese landline with its trunk 0. Spaces, hyphens and brackets are tolerated on input.
PHONE_PATTERN = r"^\+[1-9][0-9]{7,14}$|^1[3-9][0-9]{9}$|^0[1-9][0-9]{8,10}$"


def normalise_phone(raw: str) -> str:
    """E.164 for Chinese numbers: '138 0000 0001', '+86 138…', '0086…' and '022-6800 0000' alike."""
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        number = digits
    elif digits.startswith("00") and len(digits) > 10:
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


PhoneNumber = Annotated[
    str,
    Field(min_length=3, max_length=32),
    AfterValidator(_phone),
    WithJsonSchema({"type": "string", "pattern": PHONE_PATTERN, "examples": ["+8613800000001"]}),
]
Township = Annotated[
    str,
    AfterValidator(_township),
    WithJsonSchema(
        {"type": "string", "enum": list(TOWNSHIPS), "description": "A township of Jinghai District"}
    ),
]
# Finite coordinates inside the district (the schema says so, the validator explains it).
Latitude = Annotated[
    float,
    Field(allow_inf_nan=False),
    AfterValidator(_lat),
    WithJsonSchema(
        {"type": "number", "minimum": DISTRICT_BOUNDS["lat"][0], "maximum": DISTRICT_BOUNDS["lat"][1]}
    ),
]
Longitude = Annotated[
    float,
    Field(allow_inf_nan=False),
    AfterValidator(_lon),
    WithJsonSchema(
        {"type": "number", "minimum": DISTRICT_BOUNDS["lon"][0], "maximum": DISTRICT_BOUNDS["lon"][1]}
    ),
]
ClockTime = Annotated[
    str,
    AfterValidator(_hhmm),
    WithJsonSchema({"type": "string", "pattern": _HHMM.pattern, "examples": ["07:30"]}),
]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]


def _no_null_in_schema(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if options:
            kept = [o for o in options if o.get("type") != "null"]
            prop.pop("anyOf")
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
            prop.pop("default", None)


class PatchModel(BaseModel):
    """A PATCH body: fields left out stay as they are; an explicit null is refused, not applied
    (and the schema says so: no field admits null)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_in_schema)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(k for k, v in data.items() if v is None)
            if nulls:
                raise ValueError(f"null is not a value for: {', '.join(nulls)} (leave the field out instead)")
        return data


# Ids stay within the id columns (INTEGER: 32 bits on PostgreSQL, which refused a larger one
# with a server error) and offsets within a 64-bit integer.
MAX_INT = 2**31 - 1
MAX_OFFSET = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_INT)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_INT)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
