"""The period a statistic covers: local days (Asia/Shanghai), both ends included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import Depends, Query

from dispatch.core.clock import LOCAL_TZ, local, utcnow
from dispatch.core.errors import Unprocessable
from dispatch.core.validation import Township

DEFAULT_DAYS = 30
MAX_DAYS = 732
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date
    township: str | None = None

    @property
    def start(self) -> datetime:
        """The first instant, aware."""
        return datetime.combine(self.first_day, time(0), LOCAL_TZ)

    @property
    def end(self) -> datetime:
        """The instant after the last day (exclusive)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), LOCAL_TZ)

    @property
    def days(self) -> int:
        """Days of the period up to today (capacity is not counted for days still to come)."""
        last = min(self.last_day, local(utcnow()).date())
        return max(1, (last - self.first_day).days + 1)


def make_period(first: date | None, last: date | None, township: str | None = None) -> Period:
    """Defaults: the 30 days up to today (or from `from` on). Refuses reversed, too long or absurd periods."""
    for name, given in (("from", first), ("to", last)):
        if given is not None and not EARLIEST <= given <= LATEST:
            raise Unprocessable(f"{name} must be between {EARLIEST} and {LATEST}")
    span = timedelta(days=DEFAULT_DAYS - 1)
    if last is None:
        last = first + span if first is not None else local(utcnow()).date()
    if first is None:
        first = last - span
    if first > last:
        raise Unprocessable("from must not be after to")
    if (last - first).days + 1 > MAX_DAYS:
        raise Unprocessable(f"a period may span at most {MAX_DAYS} days")
    return Period(first, last, township)


def period_params(
    from_: Annotated[
        date | None, Query(alias="from", description="First local day (default: 30 days ago).")
    ] = None,
    to: Annotated[date | None, Query(description="Last local day, included (default: today).")] = None,
    township: Township | None = None,
) -> Period:
    return make_period(from_, to, township)


PeriodDep = Annotated[Period, Depends(period_params)]
