"""Provider utilization against capacity over a period.

- canteen: meals (jobs) / (meals per slot x 2 slots x days);
- day care: attendances (jobs) / (seats per day x days);
- home care: hours of completed visits / (jobs at once x opening hours x days).
Jobs are the period's requests assigned to the provider, whatever happened after. With a
township, these are the providers located in it (with all their jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from dispatch.stats.facts import Agg
from dispatch.stats.period import Period
from dispatch.stats.rollup import Group, figures
from dispatch.stats.sql import P

SLOTS_PER_DAY = 2


def open_hours(open_time: str, close_time: str) -> float:
    def minutes(value: str) -> int:
        hours, mins = value.split(":")
        return int(hours) * 60 + int(mins)

    return max(0.0, (minutes(close_time) - minutes(open_time)) / 60)


def capacity_units(kind: str, capacity: int, open_time: str, close_time: str, days: int) -> float:
    """What the provider could have done in the period, in the unit its jobs are counted in."""
    if kind == "canteen":
        return capacity * SLOTS_PER_DAY * days
    if kind == "day_care":
        return capacity * days
    return capacity * open_hours(open_time, close_time) * days


@dataclass
class ProviderStat:
    id: int
    name: str
    kind: str
    township: str
    capacity: int
    capacity_units: float
    agg: Agg

    @property
    def jobs(self) -> int:
        return self.agg.requests

    @property
    def served(self) -> int:
        return self.agg.served

    @property
    def used(self) -> float:
        return self.agg.busy_seconds / 3600 if self.kind == "home_care" else float(self.jobs)

    @property
    def utilization(self) -> float | None:
        return round(self.used / self.capacity_units, 4) if self.capacity_units else None


def provider_stats(
    session: Session, period: Period, *, include_idle: bool = False, values: bool = True
) -> list[ProviderStat]:
    """Providers with a job in the period (or every active one), most jobs first."""
    found = figures(session, period, Group.PROVIDER, values=values)
    by_provider = {key[0]: agg for key, agg in found.items()}
    stmt = select(P.c.id, P.c.name, P.c.kind, P.c.township, P.c.capacity, P.c.open_time, P.c.close_time)
    if include_idle:
        stmt = stmt.where(P.c.active.is_(True) | P.c.id.in_(list(by_provider) or [0]))
        if period.township is not None:
            stmt = stmt.where(P.c.township == period.township)
    elif by_provider:
        stmt = stmt.where(P.c.id.in_(list(by_provider)))
    else:
        return []
    rows: list[Any] = list(session.execute(stmt).all())
    stats = [
        ProviderStat(
            id=pid,
            name=name,
            kind=kind,
            township=township,
            capacity=capacity,
            capacity_units=capacity_units(kind, capacity, open_t, close_t, period.days),
            agg=by_provider.get(pid, Agg()),
        )
        for pid, name, kind, township, capacity, open_t, close_t in rows
    ]
    stats.sort(key=lambda s: (-s.jobs, s.id))
    return stats


def utilization_by_kind(stats: list[ProviderStat]) -> dict[str, float | None]:
    """Used over capacity, summed over the providers of each kind, idle ones included: the share
    of the capacity in use."""
    used: dict[str, float] = {}
    units: dict[str, float] = {}
    for s in stats:
        used[s.kind] = used.get(s.kind, 0.0) + s.used
        units[s.kind] = units.get(s.kind, 0.0) + s.capacity_units
    return {kind: (round(used[kind] / units[kind], 4) if units[kind] else None) for kind in sorted(units)}
