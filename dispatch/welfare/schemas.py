"""API shapes of the welfare guarantee."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class OpenCheck(BaseModel):
    request_id: int = Field(description="The urgent visit request put in front of the operators.")
    reason: str = Field(
        description="failed_visit:<outcome>, not_accepted:<why>, not_delivered:..., rhythm_overdue"
    )
    status: str
    created_at: datetime
    source_request_id: int | None


class OverdueElder(BaseModel):
    elder_id: int
    name: str
    township: str
    lives_alone: bool
    assistance: str
    rhythm_days: int | None = Field(
        description="Visit at least every this many days (elders under the guarantee)."
    )
    last_visit_at: datetime | None = Field(description="End of the last completed visit (last 180 days).")
    days_since_visit: int | None
    overdue_days: int = Field(
        description="Days past the rhythm; 0 when listed only for an open welfare check."
    )
    reasons: list[str]
    checks: list[OpenCheck] = Field(description="Welfare checks still open for this elder.")


class OverdueList(BaseModel):
    as_of: datetime
    total: int
    by_township: dict[str, int]
    elders: list[OverdueElder]
