"""bulk.execute_many (core/bulk.py): on SQLite, a statement executed for many rows with the
parameters built by the platform instead of SQLAlchemy's per-row machinery. What it stores
must be what SQLAlchemy would have stored, byte for byte, for every column of every table;
what it cannot reproduce goes through SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError
from sqlmodel import SQLModel

import dispatch.app  # noqa: F401  (every table registered)
from dispatch.core import bulk
from dispatch.core.bulk import execute_many
from dispatch.core.clock import as_utc
from dispatch.core.types import UTCDateTime, sqlalchemy_sqlite_processors, utc_from_text, utc_text
from dispatch.orders.lifecycle import RequestStatus, _compare_and_set_statement

# Timestamps as callers hand them over: aware in Beijing, aware UTC, another offset, naive
# (taken as UTC), on a whole second (SQLAlchemy still writes .000000), early in year 1.
STAMPS = [
    datetime(2026, 12, 7, 20, 5, 3, 123456, tzinfo=ZoneInfo("Asia/Shanghai")),
    datetime(2026, 12, 7, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2026, 6, 30, 23, 59, 59),
    datetime(1, 1, 1, 0, 0),
]


def _value(column: Column[Any], n: int) -> Any:
    """A value for row `n` (None in every other row where the column allows it)."""
    if column.primary_key and isinstance(column.type, Integer):
        return n + 1
    if column.nullable and not column.primary_key and n % 2 == 1:
        return None
    if isinstance(column.type, UTCDateTime):
        return STAMPS[n % len(STAMPS)]
    type_ = getattr(column.type, "impl", column.type)  # AutoString: a String
    if isinstance(type_, Boolean):
        return n % 2 == 0
    if isinstance(type_, Integer):
        return 1000 + n
    if isinstance(type_, Float):
        return 0.1 * (n + 1)
    if isinstance(type_, Date):
        return date(2026, 12, 7) + timedelta(days=n)
    if isinstance(type_, JSON):
        return [{"slot": "lunch", "老人": [1, 2.5, None, True]}, [], {}, None][n % 4]
    if isinstance(type_, String | Text):
        text = f"汉字 {column.name} {n} 'quoted' ?"
        return text[: type_.length] if getattr(type_, "length", None) else text
    raise AssertionError(f"no test value for {column.table.name}.{column.name} ({type_!r})")


def _engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    return engine


def _dump(engine: Engine, table: str) -> list[tuple[tuple[str, Any], ...]]:
    """The stored rows as SQLite holds them: each value with its Python type (1 and 1.0 differ)."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f'SELECT * FROM "{table}" ORDER BY rowid').all()
    return [tuple((type(v).__name__, v) for v in row) for row in rows]


@pytest.fixture
def two_databases(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    by_sqlalchemy, by_bulk = _engine(tmp_path / "sqlalchemy.db"), _engine(tmp_path / "bulk.db")
    yield by_sqlalchemy, by_bulk
    by_sqlalchemy.dispose()
    by_bulk.dispose()


def test_every_table_is_stored_as_sqlalchemy_stores_it(two_databases: tuple[Engine, Engine]) -> None:
    by_sqlalchemy, by_bulk = two_databases
    bulk._PLANS.clear()
    checked = 0
    for table in SQLModel.metadata.sorted_tables:
        rows = [{c.key: _value(c, n) for c in table.columns} for n in range(6)]
        with by_sqlalchemy.begin() as conn:
            expected = conn.execute(table.insert(), rows).rowcount
        with by_bulk.begin() as conn:
            written = execute_many(conn, table.insert(), rows)
        assert written == expected == 6, table.name
        assert _dump(by_bulk, table.name) == _dump(by_sqlalchemy, table.name), table.name
        checked += 1
    assert checked == len(SQLModel.metadata.tables) >= 20
    # Every table's insert took the platform's way, none fell back to SQLAlchemy's.
    assert len(bulk._PLANS) == checked and all(plan is not None for plan in bulk._PLANS.values())


def test_a_compare_and_set_moves_the_same_rows(two_databases: tuple[Engine, Engine]) -> None:
    """The transition's UPDATE: its bound status literal kept, the rows whose version moved on
    left alone, the count of rows moved as SQLAlchemy reports it."""
    requests = SQLModel.metadata.tables["service_request"]
    rows = [{c.key: _value(c, n) for c in requests.columns} for n in range(4)]
    for row in rows:
        row.update(status=RequestStatus.QUEUED.value, version=3)
    rows[3]["status"] = RequestStatus.CANCELLED.value
    statement = _compare_and_set_statement(RequestStatus.QUEUED, RequestStatus.OFFERED, ("provider_id",))
    now = STAMPS[0]
    changes = [
        {"b_id": 1, "b_version": 3, "b_now": now, "b_provider_id": 11},
        {"b_id": 2, "b_version": 2, "b_now": now, "b_provider_id": 12},  # read before someone else moved it
        {"b_id": 3, "b_version": 3, "b_now": now, "b_provider_id": None},
        {"b_id": 4, "b_version": 3, "b_now": now, "b_provider_id": 14},  # no longer queued
    ]
    moved = []
    for engine, execute in (
        (two_databases[0], lambda conn: conn.execute(statement, changes).rowcount),
        (two_databases[1], lambda conn: execute_many(conn, statement, changes)),
    ):
        with engine.begin() as conn:
            conn.execute(requests.insert(), rows)
            moved.append(execute(conn))
    assert moved == [2, 2]
    assert _dump(two_databases[1], "service_request") == _dump(two_databases[0], "service_request")
    statuses = [
        row[[c.key for c in requests.columns].index("status")][1]
        for row in _dump(two_databases[1], "service_request")
    ]
    assert statuses == ["offered", "queued", "offered", "cancelled"]


def test_what_it_cannot_reproduce_goes_through_sqlalchemy(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "fallback.db")
    events = SQLModel.metadata.tables["event"]
    bulk._PLANS.clear()
    with engine.begin() as conn:
        # `at` and `data` left out: their Python-side defaults (utcnow, {}) are SQLAlchemy's to fill.
        assert (
            execute_many(conn, events.insert(), [{"type": "request.created"}, {"type": "request.offered"}])
            == 2
        )
        stored = conn.exec_driver_sql("SELECT type, at, data FROM event ORDER BY seq").all()
        # RETURNING is SQLAlchemy's too.
        execute_many(
            conn, events.insert().returning(events.c.seq), [{"type": "x", "at": STAMPS[0], "data": {}}]
        )
    assert [row[0] for row in stored] == ["request.created", "request.offered"]
    assert all(row[1] is not None and row[2] == "{}" for row in stored)
    assert list(bulk._PLANS.values()) == [None, None]


def test_a_row_without_a_key_the_first_had_fails_as_sqlalchemy_fails(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "missing.db")
    table = Table("pairs", MetaData(), Column("id", Integer, primary_key=True), Column("v", Integer))
    table.create(engine)
    for execute in (
        lambda conn, rows: conn.execute(table.insert(), rows),
        lambda conn, rows: execute_many(conn, table.insert(), rows),
    ):
        with (
            pytest.raises(StatementError, match="A value is required for bind parameter 'v'"),
            engine.begin() as conn,
        ):
            execute(conn, [{"id": 1, "v": 1}, {"id": 2}])
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pairs").scalar() == 0


def test_nothing_to_write() -> None:
    assert execute_many(None, None, []) == 0  # type: ignore[arg-type]


def test_timestamps_are_stored_and_read_as_sqlalchemy_would(tmp_path: Path) -> None:
    """UTCDateTime's own conversions on SQLite (core/types.py, stop 20) against SQLAlchemy's
    chain through the class's methods: the same text stored for every kind of stamp, the same
    aware UTC value read from every kind of text; and the engine uses them."""
    bind, result = sqlalchemy_sqlite_processors()
    stamps = [*STAMPS, None]
    assert [utc_text(v) for v in stamps] == [bind(v) for v in stamps]
    texts = [
        *(bind(v) for v in stamps),
        "2026-12-07 19:35:21",  # no fraction (19 characters)
        "2026-12-07 19:35",
        "2026-12-07",
        "2026-12-07T19:35:21.5+08:00",  # an offset of its own
        "2026-12-07 19:35:21.1+0800",  # 26 characters, with an offset
        "2026-12-07 19:35:21.123456Z",
    ]
    read = [utc_from_text(t) for t in texts]
    assert read == [result(t) for t in texts]
    assert all(v is None or v.tzinfo is UTC for v in read)
    dialect = sqlite.dialect()
    impl = UTCDateTime().dialect_impl(dialect)
    assert impl.bind_processor(dialect) is utc_text and impl.result_processor(dialect, None) is utc_from_text
    table = Table("stamps", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))
    engine = create_engine(f"sqlite:///{tmp_path / 'stamps.db'}")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": n, "at": v} for n, v in enumerate(stamps)])
        stored = conn.exec_driver_sql("SELECT at FROM stamps ORDER BY id").scalars().all()
        back = conn.execute(table.select().order_by(table.c.id)).all()
    engine.dispose()
    assert stored == [bind(v) for v in stamps]
    assert [row.at for row in back] == [None if v is None else as_utc(v) for v in stamps]
