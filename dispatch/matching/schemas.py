"""API shapes of the matching endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core.validation import MAX_INT


class RefusalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: int = Field(ge=1, le=MAX_INT)
    reason: str = Field(default="", max_length=200)


class RefusalRead(BaseModel):
    elder_id: int
    provider_id: int
    provider_name: str
    provider_kind: str
    reason: str
    created_by: int | None
    created_at: datetime
    # Pending offers of this elder's requests to this provider, withdrawn when it was recorded.
    withdrawn_offers: list[int] = Field(default_factory=list)
