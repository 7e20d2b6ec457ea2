"""Elder registry tables."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import UTCDateTime


class CareLevel(StrEnum):
    SELF_CARE = "self_care"
    PARTIAL = "partial"
    FULL = "full"


class Assistance(StrEnum):
    NONE = "none"
    DIBAO = "dibao"  # minimum living guarantee (低保)
    LOW_INCOME = "low_income"  # 低收入
    TEKUN = "tekun"  # special difficulty support (特困)


class Consent(StrEnum):
    """What the elder agreed a linked relative may see."""

    STATUS = "status"
    STATUS_AND_NOTES = "status_and_notes"


class Elder(SQLModel, table=True):
    __tablename__ = "elder"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    phone: str | None = Field(default=None, max_length=20, index=True)
    township: str = Field(max_length=20, index=True)
    address: str = Field(default="", max_length=200)
    lat: float
    lon: float
    care_level: str = Field(default=CareLevel.SELF_CARE, max_length=16)
    lives_alone: bool = False
    assistance: str = Field(default=Assistance.NONE, max_length=16)
    birth_date: date | None = None
    # Care notes: health details, sensitive under PIPL art. 28.
    notes: str = Field(default="", max_length=1000)
    deceased_on: date | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FamilyLink(SQLModel, table=True):
    __tablename__ = "family_link"
    __table_args__ = (UniqueConstraint("elder_id", "user_id", name="uq_family_link"),)

    id: int | None = Field(default=None, primary_key=True)
    elder_id: int = Field(foreign_key="elder.id", index=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    relation: str = Field(default="", max_length=20)
    consent: str = Field(default=Consent.STATUS, max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
