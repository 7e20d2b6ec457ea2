"""API shapes of the statistics (the summary's names are API.md's)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class RequestCounts(BaseModel):
    total: int
    by_kind: dict[str, int]
    by_status: dict[str, int]
    by_township: dict[str, int]
    by_channel: dict[str, int]


class Percentiles(BaseModel):
    p50: float | None
    p90: float | None
    count: int = Field(description="How many requests the percentiles are taken over.")


class ByReason(BaseModel):
    total: int
    by_reason: dict[str, int]


class FailedVisits(BaseModel):
    total: int
    by_outcome: dict[str, int]


class RatingFigures(BaseModel):
    count: int
    average: float | None
    complaints: int = Field(description="Ratings of 1 or 2.")


class ProviderFigures(BaseModel):
    id: int
    name: str
    kind: str
    township: str
    capacity: int
    jobs: int
    served: int
    utilization: float | None = Field(description="Used / capacity over the period (see the README).")


class Summary(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    township: str | None
    requests: RequestCounts
    served: int
    seconds_to_assign: Percentiles
    seconds_to_arrival: Percentiles
    completion_rate: float | None = Field(description="served / total")
    escalation_rate: float | None = Field(description="escalated for a dispatch reason / total")
    escalations: ByReason
    failed_visits: FailedVisits
    welfare_checks: ByReason
    average_rating: float | None
    ratings: RatingFigures
    providers: list[ProviderFigures] = Field(description="Every provider with a job in the period.")
    utilization_by_kind: dict[str, float | None]

    model_config = {"populate_by_name": True}


class BreakdownRow(BaseModel):
    key: str
    requests: int
    served: int
    completion_rate: float | None
    escalations: int
    escalation_rate: float | None
    escalation_reasons: dict[str, int]
    seconds_to_assign_p50: float | None
    seconds_to_assign_p90: float | None
    seconds_to_arrival_p50: float | None
    seconds_to_arrival_p90: float | None
    failed_visits: int
    ratings: int
    average_rating: float | None
    complaints: int
    # Only in the breakdown by provider:
    name: str | None = None
    kind: str | None = None
    township: str | None = None
    capacity: int | None = None
    utilization: float | None = None


class Breakdown(BaseModel):
    by: str
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    township: str | None
    rows: list[BreakdownRow]

    model_config = {"populate_by_name": True}


class Bucket(BaseModel):
    upper_seconds: float | None = Field(description="Upper bound of the bucket; null for the last one.")
    count: int


class Distribution(BaseModel):
    metric: str
    count: int
    buckets: list[Bucket]


class Indicator(BaseModel):
    key: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float
    higher_is_better: bool
    met: bool | None


class ProviderQuality(BaseModel):
    id: int
    name: str
    kind: str
    township: str
    ratings: int
    average_rating: float | None
    complaints: int


class Indicators(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    township: str | None
    as_of: datetime
    indicators: list[Indicator]
    providers: list[ProviderQuality] = Field(description="Ratings and complaint counts per provider.")

    model_config = {"populate_by_name": True}
