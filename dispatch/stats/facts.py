"""The figures every statistic is built from, computed live in SQL over the requests of a period
(created within it, in the township if one is given), grouped by key columns.

Definitions (the README repeats them):
- served: requests `completed`;
- escalated: requests put in front of the operators for a dispatch reason (all declined, not
  placed in time, ...); welfare checks are escalated by design and counted apart;
- seconds to assign: `assigned_at - created_at`, over requests that were assigned;
- seconds to arrival: check-in minus the later of creation and window start (how long the elder
  waited once the service was due), over requests with a visit record;
- failed visits: visit records whose outcome is not `completed`; busy time: the length of the
  completed ones;
- complaints: ratings of 1 or 2.
Seconds are rounded to a tenth, as the daily rollups keep them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import and_, case, func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from dispatch.stats.period import Period
from dispatch.stats.sql import F, R, V, greatest, seconds
from dispatch.welfare.service import WELFARE_ESCALATION

Key = tuple[Any, ...]


@dataclass
class Agg:
    """Figures of a group of requests; groups add up (a period is the sum of its days)."""

    requests: int = 0
    status: Counter[str] = field(default_factory=Counter)
    channel: Counter[str] = field(default_factory=Counter)
    kind: Counter[str] = field(default_factory=Counter)
    township: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    escalated: int = 0
    # Waiting times in chunks (lists or numpy arrays), joined only when a percentile is taken.
    assign_parts: list[Any] = field(default_factory=list)
    arrival_parts: list[Any] = field(default_factory=list)
    visits: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    busy_seconds: float = 0.0
    ratings: int = 0
    rating_sum: int = 0
    complaints: int = 0

    def add(self, other: Agg) -> Agg:
        self.requests += other.requests
        for mine, theirs in (
            (self.status, other.status),
            (self.channel, other.channel),
            (self.kind, other.kind),
            (self.township, other.township),
            (self.reasons, other.reasons),
            (self.failed, other.failed),
        ):
            mine.update(theirs)
        self.escalated += other.escalated
        self.assign_parts.extend(other.assign_parts)
        self.arrival_parts.extend(other.arrival_parts)
        self.visits += other.visits
        self.busy_seconds += other.busy_seconds
        self.ratings += other.ratings
        self.rating_sum += other.rating_sum
        self.complaints += other.complaints
        return self

    @property
    def assign(self) -> np.ndarray:
        """Seconds to assign of every assigned request."""
        return _joined(self.assign_parts)

    @property
    def arrival(self) -> np.ndarray:
        """Seconds to arrival of every visit."""
        return _joined(self.arrival_parts)

    @property
    def served(self) -> int:
        return self.status.get("completed", 0)

    @property
    def failed_visits(self) -> int:
        return sum(self.failed.values())

    @property
    def average_rating(self) -> float | None:
        return round(self.rating_sum / self.ratings, 2) if self.ratings else None


def _joined(parts: list[Any]) -> np.ndarray:
    if not parts:
        return np.empty(0)
    return np.concatenate([np.asarray(p, dtype=float) for p in parts])


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def in_period(period: Period, *extra: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    conditions = [R.c.created_at >= period.start, R.c.created_at < period.end, *extra]
    if period.township is not None:
        conditions.append(R.c.township == period.township)
    return conditions


def escalated_for_dispatch() -> ColumnElement[bool]:
    return and_(R.c.escalation_reason.is_not(None), R.c.escalation_reason != WELFARE_ESCALATION)


def _counts(
    session: Session, period: Period, keys: Sequence[Any], found: dict[Key, Agg], extra: Sequence[Any]
) -> None:
    columns = [R.c.kind, R.c.township, R.c.status, R.c.channel, R.c.escalation_reason]
    stmt = select(*keys, *columns, func.count()).where(*in_period(period, *extra)).group_by(*keys, *columns)
    n_keys = len(keys)
    for row in session.execute(stmt).all():
        key, (kind, township, status, channel, reason, n) = tuple(row[:n_keys]), row[n_keys:]
        agg = found.setdefault(key, Agg())
        agg.requests += n
        agg.kind[kind] += n
        agg.township[township] += n
        agg.status[status] += n
        agg.channel[channel] += n
        if reason is not None and reason != WELFARE_ESCALATION:
            agg.reasons[reason] += n
            agg.escalated += n


def _assign(
    session: Session, period: Period, keys: Sequence[Any], found: dict[Key, Agg], extra: Sequence[Any]
) -> None:
    d = dialect(session)
    stmt = select(*keys, seconds(R.c.assigned_at, R.c.created_at, d)).where(
        *in_period(period, *extra), R.c.assigned_at.is_not(None)
    )
    n_keys = len(keys)
    values: dict[Key, list[float]] = {}
    for row in session.execute(stmt).all():
        values.setdefault(tuple(row[:n_keys]), []).append(round(float(row[n_keys]), 1))
    for key, part in values.items():
        found.setdefault(key, Agg()).assign_parts.append(part)


def _visits(
    session: Session, period: Period, keys: Sequence[Any], found: dict[Key, Agg], extra: Sequence[Any]
) -> None:
    d = dialect(session)
    stmt = (
        select(
            *keys,
            V.c.outcome,
            seconds(V.c.check_in_at, greatest(R.c.created_at, R.c.window_start, d), d),
            seconds(V.c.check_out_at, V.c.check_in_at, d),
        )
        .select_from(R.join(V, V.c.request_id == R.c.id))
        .where(*in_period(period, *extra))
    )
    n_keys = len(keys)
    values: dict[Key, list[float]] = {}
    for row in session.execute(stmt).all():
        key = tuple(row[:n_keys])
        agg = found.setdefault(key, Agg())
        outcome, arrival, duration = row[n_keys:]
        agg.visits += 1
        values.setdefault(key, []).append(round(float(arrival), 1))
        if outcome != "completed":
            agg.failed[outcome] += 1
        elif duration is not None:
            agg.busy_seconds += max(0.0, float(duration))
    for key, part in values.items():
        found[key].arrival_parts.append(part)


def _ratings(
    session: Session, period: Period, keys: Sequence[Any], found: dict[Key, Agg], extra: Sequence[Any]
) -> None:
    stmt = (
        select(*keys, func.count(), func.sum(F.c.rating), func.sum(case((F.c.rating <= 2, 1), else_=0)))
        .select_from(R.join(F, F.c.request_id == R.c.id))
        .where(*in_period(period, *extra))
    )
    if keys:
        stmt = stmt.group_by(*keys)
    n_keys = len(keys)
    for row in session.execute(stmt).all():
        n, total, bad = row[n_keys:]
        if n:
            agg = found.setdefault(tuple(row[:n_keys]), Agg())
            agg.ratings += int(n)
            agg.rating_sum += int(total or 0)
            agg.complaints += int(bad or 0)


def live(
    session: Session,
    period: Period,
    keys: Sequence[ColumnElement[Any]] = (),
    extra: Sequence[ColumnElement[bool]] = (),
) -> dict[Key, Agg]:
    """The period's figures straight from the requests (and `extra` conditions), grouped by
    `keys` (one group, keyed (), without keys)."""
    found: dict[Key, Agg] = {}
    for part in (_counts, _assign, _visits, _ratings):
        part(session, period, keys, found, extra)
    return found
