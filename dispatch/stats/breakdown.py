"""Breakdowns of the period's figures by local day, hour of day, township, provider or kind,
and the distribution of waiting times (the manager page's histogram)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np
from sqlmodel import Session

from dispatch.stats import facts
from dispatch.stats.facts import Agg
from dispatch.stats.period import Period
from dispatch.stats.providers import provider_stats
from dispatch.stats.rollup import Group, figures
from dispatch.stats.schemas import Breakdown, BreakdownRow, Bucket, Distribution
from dispatch.stats.sql import R, local_hour, percentiles, rate


class By(StrEnum):
    DAY = "day"
    HOUR = "hour"
    TOWNSHIP = "township"
    PROVIDER = "provider"
    KIND = "kind"


class Metric(StrEnum):
    SECONDS_TO_ASSIGN = "seconds_to_assign"
    SECONDS_TO_ARRIVAL = "seconds_to_arrival"


# Upper bounds of the histogram's buckets, seconds: a minute, five, a quarter hour, an hour...
BUCKETS = (15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)


GROUPS = {By.DAY: Group.DAY, By.TOWNSHIP: Group.TOWNSHIP, By.PROVIDER: Group.PROVIDER, By.KIND: Group.KIND}


def _figures(session: Session, period: Period, by: By) -> dict[Any, Agg]:
    if by == By.HOUR:  # hours are not rolled up: read from the requests themselves
        found = facts.live(session, period, [local_hour(R.c.created_at, facts.dialect(session))])
    else:
        found = figures(session, period, GROUPS[by])
    return {key[0]: agg for key, agg in found.items() if key and key[0] is not None}


def _row(key: Any, agg: Agg) -> BreakdownRow:
    a50, a90 = percentiles(agg.assign)
    r50, r90 = percentiles(agg.arrival)
    return BreakdownRow(
        key=str(key),
        requests=agg.requests,
        served=agg.served,
        completion_rate=rate(agg.served, agg.requests),
        escalations=agg.escalated,
        escalation_rate=rate(agg.escalated, agg.requests),
        escalation_reasons=dict(agg.reasons.most_common()),
        seconds_to_assign_p50=a50,
        seconds_to_assign_p90=a90,
        seconds_to_arrival_p50=r50,
        seconds_to_arrival_p90=r90,
        failed_visits=agg.failed_visits,
        ratings=agg.ratings,
        average_rating=agg.average_rating,
        complaints=agg.complaints,
    )


def breakdown(session: Session, period: Period, by: By) -> Breakdown:
    """Rows of the groups that had requests: days and hours in time order, the rest busiest first."""
    if by == By.PROVIDER:
        rows = [
            _row(s.id, s.agg).model_copy(
                update={
                    "name": s.name,
                    "kind": s.kind,
                    "township": s.township,
                    "capacity": s.capacity,
                    "utilization": s.utilization,
                }
            )
            for s in provider_stats(session, period)
        ]
    else:
        found = _figures(session, period, by)
        order = (
            sorted(found, key=str)
            if by in (By.DAY, By.HOUR)
            else sorted(found, key=lambda k: (-found[k].requests, str(k)))
        )
        rows = [_row(k, found[k]) for k in order]
    return Breakdown(
        by=by.value, from_=period.first_day, to=period.last_day, township=period.township, rows=rows
    )


def distribution(session: Session, period: Period, metric: Metric) -> Distribution:
    agg = figures(session, period).get((), Agg())
    values = agg.assign if metric == Metric.SECONDS_TO_ASSIGN else agg.arrival
    edges = [-np.inf, *BUCKETS, np.inf]
    counts, _ = np.histogram(np.asarray(values, dtype=float), bins=edges)
    buckets = [
        Bucket(upper_seconds=None if np.isinf(upper) else float(upper), count=int(n))
        for upper, n in zip(edges[1:], counts, strict=True)
    ]
    return Distribution(metric=metric.value, count=len(values), buckets=buckets)
