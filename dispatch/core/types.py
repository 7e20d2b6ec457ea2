"""Column types shared by every table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from dispatch.core.clock import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        # SQLite compares timestamps as text: store one fixed naive UTC format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    # On SQLite the two conversions below replace SQLAlchemy's chain (this class's methods
    # around the DATETIME type's own, several Python calls and a datetime.replace per value,
    # which costs ten times a parse), storing and reading the very same text; elsewhere the
    # methods above run as SQLAlchemy calls them (stop 20).

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        return utc_text if dialect.name == "sqlite" else super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        return utc_from_text if dialect.name == "sqlite" else super().result_processor(dialect, coltype)


# The last timestamp converted and its text: a batch's rows mostly share one `now`.
_LAST: tuple[Any, Any] = (None, None)


def utc_text(value: Any) -> Any:
    """A timestamp as UTCDateTime stores it on SQLite: naive UTC, `YYYY-MM-DD HH:MM:SS.ffffff`
    (SQLite's DATETIME storage format). What is not a plain datetime takes SQLAlchemy's way."""
    global _LAST
    last = _LAST
    if value is last[0]:
        return last[1]
    if value is None:
        return None
    if type(value) is not datetime:
        return sqlalchemy_sqlite_processors()[0](value)
    if value.tzinfo is None:
        text = value.isoformat(" ", "microseconds")
    elif value.tzinfo is UTC:
        text = value.isoformat(" ", "microseconds")[:26]  # without its "+00:00"
    else:
        text = value.astimezone(UTC).isoformat(" ", "microseconds")[:26]
    _LAST = (value, text)
    return text


def utc_from_text(value: Any) -> Any:
    """SQLite's text of a timestamp, aware in UTC: as stored (naive UTC, 19 or 26 characters),
    parsed with its offset written on; anything else as SQLAlchemy reads it (fromisoformat),
    then as_utc."""
    if value is None:
        return None
    if len(value) in (19, 26):
        try:
            return _fromisoformat(value + "+00:00")  # UTC itself, with no replace() after
        except ValueError:
            pass  # it had an offset of its own
    return sqlalchemy_sqlite_processors()[1](value)


_fromisoformat = datetime.fromisoformat


@cache
def sqlalchemy_sqlite_processors() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """UTCDateTime's bind and result conversions on SQLite as SQLAlchemy builds them from the
    methods above: the reference utc_text and utc_from_text answer as (tests/dispatch/test_bulk.py)."""
    dialect = sqlite.dialect()
    impl = cast(UTCDateTime, UTCDateTime().dialect_impl(dialect))
    bind: Callable[[Any], Any] | None = TypeDecorator.bind_processor(impl, dialect)
    result: Callable[[Any], Any] | None = TypeDecorator.result_processor(impl, dialect, None)
    assert bind is not None and result is not None
    return bind, result


JSONType: Any = JSON().with_variant(JSON(none_as_null=True), "postgresql")
