"""The plan's indicators, computed from the data (targets are settings, TARGET_*):

- meal_township_share: townships where a meal (助餐) request of the period was completed,
  over all of Jinghai's townships;
- day_care_township_share: townships with a day-care center that served someone in the period
  (completed a day-care request), over all townships;
- visited_on_rhythm_share: elders living alone (alive, registered) whose last completed visit,
  as of the period's end (or now), is within their rhythm, over all elders living alone;
- average_rating and complaint_rate (ratings of 1 or 2 over all ratings) of the period;
  per provider: ratings, average and complaints.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlmodel import Session

from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.geo import TOWNSHIPS
from dispatch.stats import facts
from dispatch.stats.facts import Agg
from dispatch.stats.period import Period
from dispatch.stats.rollup import Group, figures
from dispatch.stats.schemas import Indicator, Indicators, ProviderQuality
from dispatch.stats.sql import F, P, R
from dispatch.welfare import rhythm


def _indicator(
    key: str, part: float | None, whole: float | None, target: float, *, higher_is_better: bool = True
) -> Indicator:
    value = round(part / whole, 4) if part is not None and whole else None
    met = None if value is None else (value >= target if higher_is_better else value <= target)
    return Indicator(
        key=key,
        value=value,
        numerator=part,
        denominator=whole,
        target=target,
        higher_is_better=higher_is_better,
        met=met,
    )


def _townships_served(session: Session, period: Period) -> tuple[int, int]:
    """(townships where a meal was served, townships with a day-care center that served someone)."""
    cells = figures(session, period, Group.TOWNSHIP_KIND, values=False)
    meals = {township for (township, kind), agg in cells.items() if kind == "meal" and agg.served}
    served = {
        key[0] for key, agg in figures(session, period, Group.PROVIDER, values=False).items() if agg.served
    }
    day_care = set()
    if served:
        stmt = select(P.c.township).where(P.c.id.in_(served), P.c.kind == "day_care")
        if period.township is not None:
            stmt = stmt.where(P.c.township == period.township)
        day_care = set(session.execute(stmt).scalars())
    return len(meals), len(day_care)


def provider_quality(session: Session, period: Period) -> list[ProviderQuality]:
    stmt = (
        select(
            P.c.id,
            P.c.name,
            P.c.kind,
            P.c.township,
            func.count(),
            func.avg(F.c.rating),
            func.sum(case((F.c.rating <= 2, 1), else_=0)),
        )
        .select_from(F.join(R, F.c.request_id == R.c.id).join(P, P.c.id == R.c.provider_id))
        .where(*facts.in_period(period))
        .group_by(P.c.id, P.c.name, P.c.kind, P.c.township)
    )
    rows = [
        ProviderQuality(
            id=pid,
            name=name,
            kind=kind,
            township=township,
            ratings=int(n),
            average_rating=round(float(avg), 2) if avg is not None else None,
            complaints=int(bad or 0),
        )
        for pid, name, kind, township, n, avg, bad in session.execute(stmt).all()
    ]
    rows.sort(key=lambda q: (-q.complaints, q.average_rating or 0, q.id))
    return rows


def indicators(session: Session, period: Period, *, now: datetime | None = None) -> Indicators:
    settings = get_settings()
    now = now or utcnow()
    as_of = min(now, period.end)
    townships = 1 if period.township is not None else len(TOWNSHIPS)
    meal, day_care = _townships_served(session, period)
    alone = rhythm.rhythm_status(session, as_of=as_of, township=period.township, lives_alone_only=True)
    on_rhythm = sum(1 for r in alone if not r.overdue)
    rated = figures(session, period, values=False).get((), Agg())
    items = [
        _indicator("meal_township_share", meal, townships, settings.target_meal_township_share),
        _indicator("day_care_township_share", day_care, townships, settings.target_day_care_township_share),
        _indicator("visited_on_rhythm_share", on_rhythm, len(alone), settings.target_visited_on_rhythm_share),
        _indicator(
            "average_rating",
            rated.rating_sum if rated.ratings else None,
            rated.ratings,
            settings.target_average_rating,
        ),
        _indicator(
            "complaint_rate",
            rated.complaints if rated.ratings else None,
            rated.ratings,
            settings.target_complaint_rate,
            higher_is_better=False,
        ),
    ]
    return Indicators(
        from_=period.first_day,
        to=period.last_day,
        township=period.township,
        as_of=as_of,
        indicators=items,
        providers=provider_quality(session, period),
    )
