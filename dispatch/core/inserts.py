"""Bulk inserts whose new primary keys are needed, in the order of the rows.

`INSERT ... RETURNING id` with many rows is one statement on PostgreSQL (SQLAlchemy's
"insertmanyvalues" sorts the returned keys back into the rows' order). SQLite has no INSERT
form that ties new ROWIDs to the order of the parameter sets, so there SQLAlchemy falls back
to one INSERT per row when the order is asked for (`sort_by_parameter_order=True`): ~45 us a
row in the intake's batches, inside the write lock, for every request, event, offer and text.

On SQLite the keys are given instead: the next free key is read and the rows are inserted with
theirs in one executemany (`bulk.execute_many`). That is safe because a SQLite write transaction here holds the
database's one write lock from its first statement (db.py: BEGIN IMMEDIATE behind the file
lock), so no other writer can take a key between the read and the insert; and were a
transaction ever deferred, SQLite refuses its write once another writer committed after it
read (SQLITE_BUSY_SNAPSHOT), so a stale read fails loudly rather than reusing a key. The keys
are those SQLite would have drawn itself: one past the largest in the table, and for an
AUTOINCREMENT table (events: a seq is never reused) one past the largest ever drawn, kept in
sqlite_sequence, which the insert moves on as SQLite's own would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Insert, Select, Table, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from dispatch.core.bulk import execute_many

_RETURNING: dict[Table, Insert] = {}
_PLAIN: dict[Table, Insert] = {}
_NEXT_KEY: dict[Table, Select[Any]] = {}


def insert_returning_keys(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert `rows` (without their primary key) into `table` in the connection's transaction;
    the new keys, in the order of `rows`."""
    if not rows:
        return []
    (key,) = table.primary_key.columns
    if conn.dialect.name != "sqlite":
        if table not in _RETURNING:
            _RETURNING[table] = table.insert().returning(key, sort_by_parameter_order=True)
        return list(conn.execute(_RETURNING[table], list(rows)).scalars().all())
    first = int(conn.execute(_next_key(table)).scalar_one())
    keys = list(range(first, first + len(rows)))
    if table not in _PLAIN:
        _PLAIN[table] = table.insert()
    execute_many(conn, _PLAIN[table], [{**row, key.name: k} for row, k in zip(rows, keys, strict=True)])
    return keys


def _next_key(table: Table) -> Select[Any]:
    """SQLite: the key the next row of `table` would get."""
    if table not in _NEXT_KEY:
        (key,) = table.primary_key.columns
        largest: ColumnElement[Any] = func.coalesce(select(func.max(key)).scalar_subquery(), 0)
        if table.dialect_options["sqlite"].get("autoincrement"):
            drawn: ColumnElement[Any] = literal_column(
                f"(SELECT seq FROM sqlite_sequence WHERE name = '{table.name}')"  # the table's own name
            )
            largest = func.max(largest, func.coalesce(drawn, 0))
        _NEXT_KEY[table] = select(largest + 1)
    return _NEXT_KEY[table]
