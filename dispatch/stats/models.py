"""Daily rollups of the statistics, so that a year of history answers in well under a second.

A day's cells are computed from the requests created that day (local time) by the same queries
that compute today's figures live, and recomputed when anything of that day changes (see
rollup.py). Waiting times are kept as lists of values (comma-separated seconds), so the
percentiles of any period stay exact.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from dispatch.core.clock import utcnow
from dispatch.core.types import UTCDateTime


class StatsFigures(SQLModel):
    """What a cell counts (the columns both rollup tables share)."""

    requests: int = 0
    st_queued: int = 0
    st_offered: int = 0
    st_assigned: int = 0
    st_in_service: int = 0
    st_completed: int = 0
    st_escalated: int = 0
    st_cancelled: int = 0
    ch_hotline: int = 0
    ch_app: int = 0
    ch_ivr: int = 0
    ch_sms: int = 0
    ch_scheduled: int = 0
    escalated: int = 0  # for a dispatch reason (welfare checks are counted apart)
    # By reason: the matcher's and the sweeper's, then "reason:n,..." of any other.
    esc_all_declined: int = 0
    esc_not_placed_in_time: int = 0
    esc_no_provider_in_range: int = 0
    esc_none_open: int = 0
    esc_no_skilled_provider: int = 0
    esc_all_full: int = 0
    reasons: str = Field(default="", sa_type=Text)
    visits: int = 0
    failed_not_home: int = 0
    failed_refused: int = 0
    failed_in_hospital: int = 0
    failed_other: int = 0
    busy_seconds: float = 0.0
    ratings: int = 0
    rating_sum: int = 0
    complaints: int = 0
    assign_seconds: str = Field(default="", sa_type=Text)
    arrival_seconds: str = Field(default="", sa_type=Text)


class StatsDayCell(StatsFigures, table=True):
    """The requests of one local day, township and kind."""

    __tablename__ = "stats_day_cell"
    __table_args__ = (Index("uq_stats_day_cell", "day", "township", "kind", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    township: str = Field(max_length=20)
    kind: str = Field(max_length=16)


class StatsProviderDay(StatsFigures, table=True):
    """The requests of one local day assigned to one provider."""

    __tablename__ = "stats_provider_day"
    __table_args__ = (Index("uq_stats_provider_day", "day", "provider_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    provider_id: int = Field(foreign_key="provider.id")


class StatsRolledDay(SQLModel, table=True):
    """The days whose cells are in the rollup tables (every other day is computed live)."""

    __tablename__ = "stats_rolled_day"

    day: date = Field(primary_key=True)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
