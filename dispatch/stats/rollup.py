"""Daily rollups: written by a cron job, read together with a live part.

A period's figures are the rolled cells of its days before today that have been rolled up, plus
the live figures of every other day (today, and any day not rolled yet), computed by the same
queries. The job (`workers.stats.refresh_stats`) rolls up every day not rolled yet, yesterday
again, and every day whose requests changed since its last run (a transition, a late rating), so
a rolled day is at most one run behind; today is always exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from dispatch.core.clock import local, utcnow
from dispatch.stats import facts
from dispatch.stats.facts import Agg, Key
from dispatch.stats.models import StatsDayCell, StatsFigures, StatsProviderDay, StatsRolledDay
from dispatch.stats.period import Period
from dispatch.stats.sql import F, P, R, local_day

CELLS: Table = StatsDayCell.__table__  # type: ignore[attr-defined]
PROVIDER_DAYS: Table = StatsProviderDay.__table__  # type: ignore[attr-defined]
ROLLED: Table = StatsRolledDay.__table__  # type: ignore[attr-defined]
STATUSES = ("queued", "offered", "assigned", "in_service", "completed", "escalated", "cancelled")
CHANNELS = ("hotline", "app", "ivr", "sms", "scheduled")
OUTCOMES = ("not_home", "refused", "in_hospital")
REASONS = (
    "all_declined",
    "not_placed_in_time",
    "no_provider_in_range",
    "none_open",
    "no_skilled_provider",
    "all_full",
)
SUMMED = [
    name for name in StatsFigures.model_fields if name not in ("reasons", "assign_seconds", "arrival_seconds")
]
CHUNK_DAYS = 31
MAX_DAYS_PER_RUN = 400


class Group(StrEnum):
    ALL = "all"
    DAY = "day"
    TOWNSHIP = "township"
    KIND = "kind"
    TOWNSHIP_KIND = "township_kind"
    PROVIDER = "provider"


# ---- writing --------------------------------------------------------------------------------


def _figures(agg: Agg) -> dict[str, Any]:
    row: dict[str, Any] = {"requests": agg.requests, "escalated": agg.escalated, "visits": agg.visits}
    row.update({f"st_{s}": agg.status.get(s, 0) for s in STATUSES})
    row.update({f"ch_{c}": agg.channel.get(c, 0) for c in CHANNELS})
    row.update({f"failed_{o}": agg.failed.get(o, 0) for o in OUTCOMES})
    row["failed_other"] = agg.failed_visits - sum(agg.failed.get(o, 0) for o in OUTCOMES)
    row.update(busy_seconds=round(agg.busy_seconds, 1), ratings=agg.ratings, rating_sum=agg.rating_sum)
    row.update({f"esc_{r}": agg.reasons.get(r, 0) for r in REASONS}, complaints=agg.complaints)
    # Reasons the matcher may name in future versions: kept as text, summed on reading.
    row["reasons"] = ",".join(f"{r}:{n}" for r, n in sorted(agg.reasons.items()) if r not in REASONS)
    row["assign_seconds"] = ",".join(f"{v:.1f}" for v in agg.assign)
    row["arrival_seconds"] = ",".join(f"{v:.1f}" for v in agg.arrival)
    return row


def ranges(days: Iterable[date], *, limit: int = CHUNK_DAYS) -> Iterator[tuple[date, date]]:
    """Contiguous runs of days, at most `limit` long."""
    ordered = sorted(set(days))
    start = prev = None
    for day in ordered:
        if (
            start is not None
            and prev is not None
            and day == prev + timedelta(days=1)
            and (day - start).days < limit
        ):
            prev = day
            continue
        if start is not None and prev is not None:
            yield start, prev
        start = prev = day
    if start is not None and prev is not None:
        yield start, prev


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def refresh(session: Session, days: Iterable[date]) -> int:
    """Recompute the cells of these days (in the caller's transaction); returns the days done."""
    done = 0
    for first, last in ranges(days):
        period = Period(first, last)
        day = local_day(R.c.created_at, facts.dialect(session))
        cells = facts.live(session, period, [day, R.c.township, R.c.kind])
        by_provider = facts.live(session, period, [day, R.c.provider_id], [R.c.provider_id.is_not(None)])
        for table in (CELLS, PROVIDER_DAYS, ROLLED):
            session.execute(delete(table).where(table.c.day >= first, table.c.day <= last))
        rows = [
            {"day": date.fromisoformat(d), "township": t, "kind": k, **_figures(a)}
            for (d, t, k), a in cells.items()
        ]
        if rows:
            session.execute(insert(CELLS), rows)
        rows = [
            {"day": date.fromisoformat(d), "provider_id": p, **_figures(a)}
            for (d, p), a in by_provider.items()
        ]
        if rows:
            session.execute(insert(PROVIDER_DAYS), rows)
        span = (last - first).days + 1
        now = utcnow()
        session.execute(
            insert(ROLLED), [{"day": first + timedelta(days=n), "computed_at": now} for n in range(span)]
        )
        done += span
    return done


def due_days(session: Session, *, now: datetime | None = None) -> list[date]:
    """Days to roll up now: every past day not rolled yet, yesterday, and every past day whose
    requests changed (or were rated) since the last run."""
    now = now or utcnow()
    today = local(now).date()
    today_start = Period(today, today).start
    d = facts.dialect(session)
    first_at = session.execute(select(func.min(R.c.created_at))).scalar()
    if first_at is None:
        return []
    rolled = set(session.execute(select(ROLLED.c.day)).scalars())
    due = {today - timedelta(days=1)}
    day = local(first_at).date()
    while day < today:
        if day not in rolled:
            due.add(day)
        day += timedelta(days=1)
    since = session.execute(select(func.max(ROLLED.c.computed_at))).scalar()
    if since is not None:
        changed = (
            select(local_day(R.c.created_at, d))
            .where(R.c.updated_at >= since, R.c.created_at < today_start)
            .distinct()
        )
        rated = (
            select(local_day(R.c.created_at, d))
            .select_from(F.join(R, R.c.id == F.c.request_id))
            .where(F.c.created_at >= since, R.c.created_at < today_start)
            .distinct()
        )
        for query in (changed, rated):
            due.update(date.fromisoformat(v) for v in session.execute(query).scalars())
    return sorted(d for d in due if d < today)[-MAX_DAYS_PER_RUN:]


# ---- reading --------------------------------------------------------------------------------


def _parse(text: str | None) -> np.ndarray:
    return np.fromstring(text, dtype=float, sep=",") if text else np.empty(0)


def _agg_of(row: Any, offset: int) -> Agg:
    values = dict(zip(SUMMED, row[offset : offset + len(SUMMED)], strict=True))
    agg = Agg(requests=int(values["requests"] or 0), escalated=int(values["escalated"] or 0))
    agg.status.update({s: int(values[f"st_{s}"] or 0) for s in STATUSES if values[f"st_{s}"]})
    agg.channel.update({c: int(values[f"ch_{c}"] or 0) for c in CHANNELS if values[f"ch_{c}"]})
    agg.failed.update({o: int(values[f"failed_{o}"] or 0) for o in OUTCOMES if values[f"failed_{o}"]})
    agg.reasons.update({r: int(values[f"esc_{r}"] or 0) for r in REASONS if values[f"esc_{r}"]})
    if values["failed_other"]:
        agg.failed["other"] = int(values["failed_other"])
    agg.visits, agg.busy_seconds = int(values["visits"] or 0), float(values["busy_seconds"] or 0.0)
    agg.ratings, agg.rating_sum = int(values["ratings"] or 0), int(values["rating_sum"] or 0)
    agg.complaints = int(values["complaints"] or 0)
    if len(row) > offset + len(SUMMED):
        agg.assign_parts.append(_parse(row[offset + len(SUMMED)]))
        agg.arrival_parts.append(_parse(row[offset + len(SUMMED) + 1]))
    return agg


def _concat(session: Session, column: Any) -> ColumnElement[str]:
    values = func.nullif(column, "")
    if facts.dialect(session) == "postgresql":
        return func.string_agg(values, ",")
    return func.group_concat(values, ",")


def _rolled(
    session: Session, period: Period, group: Group, days: tuple[date, date], *, values: bool
) -> dict[Key, Agg]:
    table = PROVIDER_DAYS if group == Group.PROVIDER else CELLS
    keys: list[Any] = {
        Group.ALL: [CELLS.c.township, CELLS.c.kind],
        Group.DAY: [CELLS.c.day],
        Group.TOWNSHIP: [CELLS.c.township],
        Group.KIND: [CELLS.c.kind],
        Group.TOWNSHIP_KIND: [CELLS.c.township, CELLS.c.kind],
        Group.PROVIDER: [PROVIDER_DAYS.c.provider_id],
    }[group]
    rolled_days = select(ROLLED.c.day).where(ROLLED.c.day >= days[0], ROLLED.c.day <= days[1])
    where = [table.c.day >= days[0], table.c.day <= days[1], table.c.day.in_(rolled_days)]
    if period.township is not None:
        where.append(table.c.township == period.township if group != Group.PROVIDER else table.c.provider_id.in_(
            select(P.c.id).where(P.c.township == period.township)))  # fmt: skip
    sums = [func.sum(table.c[name]) for name in SUMMED]
    waits = (
        [_concat(session, table.c.assign_seconds), _concat(session, table.c.arrival_seconds)]
        if values
        else []
    )
    stmt = select(*keys, *sums, *waits)
    found: dict[Key, Agg] = {}
    for row in session.execute(stmt.where(*where).group_by(*keys)).all():
        key = tuple(v.isoformat() if isinstance(v, date) else v for v in row[: len(keys)])
        agg = _agg_of(row, len(keys))
        if group == Group.ALL:
            agg.township[key[0]] += agg.requests
            agg.kind[key[1]] += agg.requests
        found[key] = agg
    reasons = select(*keys, table.c.reasons).where(*where, table.c.reasons != "")
    for row in session.execute(reasons).all():
        key = tuple(v.isoformat() if isinstance(v, date) else v for v in row[: len(keys)])
        for item in row[-1].split(","):
            reason, _, n = item.rpartition(":")
            found[key].reasons[reason] += int(n)
    if group == Group.ALL:  # the (township, kind) rows were only there to count by township and kind
        total = Agg()
        for agg in found.values():
            total.add(agg)
        return {(): total} if found else {}
    return found


def _live_keys(session: Session, group: Group) -> list[ColumnElement[Any]]:
    keys: dict[Group, list[ColumnElement[Any]]] = {
        Group.ALL: [],
        Group.DAY: [local_day(R.c.created_at, facts.dialect(session))],
        Group.TOWNSHIP: [R.c.township],
        Group.KIND: [R.c.kind],
        Group.TOWNSHIP_KIND: [R.c.township, R.c.kind],
        Group.PROVIDER: [R.c.provider_id],
    }
    return keys[group]


def _live(session: Session, period: Period, group: Group, first: date, last: date) -> dict[Key, Agg]:
    if group != Group.PROVIDER:
        return facts.live(session, Period(first, last, period.township), _live_keys(session, group))
    extra = [R.c.provider_id.is_not(None)]
    if period.township is not None:  # providers located in the township, whoever they served
        extra.append(R.c.provider_id.in_(select(P.c.id).where(P.c.township == period.township)))
    return facts.live(session, Period(first, last), _live_keys(session, group), extra)


def figures(
    session: Session, period: Period, group: Group = Group.ALL, *, values: bool = True
) -> dict[Key, Agg]:
    """The period's figures by `group`, from the rollups where they are ready, live elsewhere.
    Without `values`, the waiting times are left out (cheaper when no percentile is needed)."""
    today = local(utcnow()).date()
    last_rolled = min(period.last_day, today - timedelta(days=1))
    rolled: set[date] = set()
    found: dict[Key, Agg] = {}
    if period.first_day <= last_rolled:
        span = (period.first_day, last_rolled)
        rolled = set(
            session.execute(
                select(ROLLED.c.day).where(ROLLED.c.day >= span[0], ROLLED.c.day <= span[1])
            ).scalars()
        )
        if rolled:
            found = _rolled(session, period, group, span, values=values)
    every = (
        period.first_day + timedelta(days=n) for n in range((period.last_day - period.first_day).days + 1)
    )
    for first, last in ranges((d for d in every if d not in rolled), limit=10_000):
        for key, agg in _live(session, period, group, first, last).items():
            found.setdefault(key, Agg()).add(agg)
    return found
