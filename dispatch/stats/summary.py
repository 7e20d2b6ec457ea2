"""`GET /api/stats/summary`: the period's figures, from the daily rollups and today's live part."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlmodel import Session

from dispatch.stats.facts import Agg
from dispatch.stats.period import Period
from dispatch.stats.providers import provider_stats, utilization_by_kind
from dispatch.stats.rollup import figures
from dispatch.stats.schemas import (
    ByReason,
    FailedVisits,
    Percentiles,
    ProviderFigures,
    RatingFigures,
    RequestCounts,
    Summary,
)
from dispatch.stats.sql import R, W, percentiles, rate


def welfare_reasons(session: Session, period: Period) -> Counter[str]:
    """Welfare checks raised in the period (by when they were raised), by reason."""
    stmt = (
        select(W.c.reason, func.count())
        .select_from(W.join(R, W.c.request_id == R.c.id))
        .where(W.c.created_at >= period.start, W.c.created_at < period.end)
        .group_by(W.c.reason)
    )
    if period.township is not None:
        stmt = stmt.where(R.c.township == period.township)
    return Counter({str(reason): int(n) for reason, n in session.execute(stmt).all()})


def summary(session: Session, period: Period) -> Summary:
    agg = figures(session, period).get((), Agg())
    providers = provider_stats(session, period, include_idle=True, values=False)
    welfare = welfare_reasons(session, period)
    assign, arrival = percentiles(agg.assign), percentiles(agg.arrival)
    return Summary(
        from_=period.first_day,
        to=period.last_day,
        township=period.township,
        requests=RequestCounts(
            total=agg.requests,
            by_kind=dict(agg.kind.most_common()),
            by_status=dict(agg.status.most_common()),
            by_township=dict(agg.township.most_common()),
            by_channel=dict(agg.channel.most_common()),
        ),
        served=agg.served,
        seconds_to_assign=Percentiles(p50=assign[0], p90=assign[1], count=len(agg.assign)),
        seconds_to_arrival=Percentiles(p50=arrival[0], p90=arrival[1], count=len(agg.arrival)),
        completion_rate=rate(agg.served, agg.requests),
        escalation_rate=rate(agg.escalated, agg.requests),
        escalations=ByReason(total=agg.escalated, by_reason=dict(agg.reasons.most_common())),
        failed_visits=FailedVisits(total=agg.failed_visits, by_outcome=dict(agg.failed.most_common())),
        welfare_checks=ByReason(total=sum(welfare.values()), by_reason=dict(welfare.most_common())),
        average_rating=agg.average_rating,
        ratings=RatingFigures(count=agg.ratings, average=agg.average_rating, complaints=agg.complaints),
        providers=[
            ProviderFigures(
                id=s.id,
                name=s.name,
                kind=s.kind,
                township=s.township,
                capacity=s.capacity,
                jobs=s.jobs,
                served=s.served,
                utilization=s.utilization,
            )
            for s in providers
            if s.jobs
        ],
        utilization_by_kind=utilization_by_kind(providers),
    )
