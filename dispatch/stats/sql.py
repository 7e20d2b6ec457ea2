"""SQL that differs between SQLite and PostgreSQL: seconds between timestamps, local days/hours.

SQLite stores timestamps as naive UTC text; PostgreSQL as timestamptz. Asia/Shanghai has had
no daylight saving since 1991, so on SQLite local time is UTC+8 throughout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Float, Table, cast, func
from sqlalchemy.sql.elements import ColumnElement

from dispatch.core.clock import LOCAL_TZ
from dispatch.elders.models import Elder
from dispatch.orders.models import ServiceRequest
from dispatch.plans.models import PlanOccurrence
from dispatch.visits.models import Feedback, Visit
from dispatch.welfare.models import WelfareCheck
from services.models import Provider

R: Table = ServiceRequest.__table__  # type: ignore[attr-defined]
V: Table = Visit.__table__  # type: ignore[attr-defined]
F: Table = Feedback.__table__  # type: ignore[attr-defined]
W: Table = WelfareCheck.__table__  # type: ignore[attr-defined]
P: Table = Provider.__table__  # type: ignore[attr-defined]
E: Table = Elder.__table__  # type: ignore[attr-defined]
O: Table = PlanOccurrence.__table__  # type: ignore[attr-defined]  # noqa: E741


def seconds(later: Any, earlier: Any, dialect: str) -> ColumnElement[float]:
    if dialect == "sqlite":
        return cast((func.julianday(later) - func.julianday(earlier)) * 86400.0, Float)
    return cast(func.extract("epoch", later - earlier), Float)


def greatest(a: Any, b: Any, dialect: str) -> ColumnElement[Any]:
    return func.max(a, b) if dialect == "sqlite" else func.greatest(a, b)


def local_day(column: Any, dialect: str) -> ColumnElement[str]:
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d", column, "+8 hours")
    return func.to_char(func.timezone(str(LOCAL_TZ), column), "YYYY-MM-DD")


def local_hour(column: Any, dialect: str) -> ColumnElement[str]:
    if dialect == "sqlite":
        return func.strftime("%H", column, "+8 hours")
    return func.to_char(func.timezone(str(LOCAL_TZ), column), "HH24")


def local_month(column: Any, dialect: str) -> ColumnElement[str]:
    if dialect == "sqlite":
        return func.strftime("%Y-%m", column, "+8 hours")
    return func.to_char(func.timezone(str(LOCAL_TZ), column), "YYYY-MM")


def percentiles(values: Any) -> tuple[float | None, float | None]:
    """p50 and p90 by linear interpolation between the closest ranks (numpy's default method)."""
    if len(values) == 0:
        return None, None
    p50, p90 = np.percentile(np.asarray(values, dtype=float), [50, 90])
    return round(float(p50), 1), round(float(p90), 1)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
