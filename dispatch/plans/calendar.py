"""When a plan's occurrences fall and what window each one gets: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dispatch.core.clock import LOCAL_TZ, local

# The windows an operator would book (the same slots as intake's defaults).
MEAL_SLOTS = {"lunch": ("11:00", "12:30"), "dinner": ("17:00", "18:30")}
DEFAULT_TIMES = {"day_care": ("08:00", "17:00"), "home_care": ("09:00", "11:00"), "visit": ("09:00", "11:00")}
DEFAULT_EVERY_DAYS = 7


@dataclass(frozen=True)
class PlanRule:
    """The part of a plan that decides its days and windows."""

    kind: str
    weekdays: tuple[int, ...]
    every_days: int | None
    start_time: str
    end_time: str
    starts_on: date
    ends_on: date | None


def clock(value: str) -> time:
    """HH:MM as a time; 24:00 is the last instant of the day."""
    if value == "24:00":
        return time(23, 59, 59)
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def occurs_on(rule: PlanRule, day: date) -> bool:
    if day < rule.starts_on or (rule.ends_on is not None and day > rule.ends_on):
        return False
    if rule.kind == "visit":
        return (day - rule.starts_on).days % (rule.every_days or DEFAULT_EVERY_DAYS) == 0
    return day.isoweekday() in rule.weekdays


def window(rule: PlanRule, day: date) -> tuple[datetime, datetime]:
    """The service window of the occurrence on `day`, as aware datetimes (Asia/Shanghai)."""
    start = datetime.combine(day, clock(rule.start_time), LOCAL_TZ)
    end = datetime.combine(day, clock(rule.end_time), LOCAL_TZ)
    return start, end


def due(rule: PlanRule, *, now: datetime, horizon: timedelta) -> Iterator[tuple[date, datetime, datetime]]:
    """Occurrences whose window starts after `now` and within `horizon`: (day, start, end).
    A window already begun is left alone: nobody can be sent in time for it any more."""
    first = local(now).date()
    last = local(now + horizon).date()
    day = first
    while day <= last:
        if occurs_on(rule, day):
            start, end = window(rule, day)
            if now < start <= now + horizon:
                yield day, start, end
        day += timedelta(days=1)


def next_occurrence(rule: PlanRule, *, after: datetime, limit_days: int = 120) -> date | None:
    """The first day whose window starts after `after` (for display)."""
    day = local(after).date()
    for _ in range(limit_days):
        if occurs_on(rule, day) and window(rule, day)[0] > after:
            return day
        day += timedelta(days=1)
    return None
