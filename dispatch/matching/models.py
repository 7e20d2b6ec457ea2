"""Matching tables: the providers an elder refused (never offered to that elder again)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import UTCDateTime


class RefusedProvider(SQLModel, table=True):
    """An elder (or the family, through an operator) does not want this provider again: after a
    quarrel, a theft, a caregiver the elder is afraid of. A hard constraint of the matcher."""

    __tablename__ = "refused_provider"
    __table_args__ = (UniqueConstraint("elder_id", "provider_id", name="uq_refused_provider"),)

    id: int | None = Field(default=None, primary_key=True)
    elder_id: int = Field(foreign_key="elder.id", index=True)
    provider_id: int = Field(foreign_key="provider.id", index=True)
    reason: str = Field(default="", max_length=200)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
