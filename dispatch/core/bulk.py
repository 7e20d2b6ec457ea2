"""One statement executed for many rows (executemany), with less work per row on SQLite.

For every row of an executemany, SQLAlchemy builds the statement's full parameter dict
(`construct_params`) and passes each value through its column type's processors; a timestamp
goes through three (UTCDateTime's conversion to naive UTC, then SQLite's DATETIME formatting
of seven fields through a `%` format). For the API's and the workers' batches — requests,
events, offers, texts, audit rows, the compare-and-sets of a transition — that was most of
the cost of an insert outside SQLite itself (~8 of ~26 us a row for a request; a sixth of
the API's CPU at 1,000 requests/s was SQLAlchemy's executemany parameters, py-spy).

`execute_many` compiles the statement once per shape (the statement and the keys of its
rows), keeps for each `?` where its value comes from (the row, or a value bound in the
statement) and how it is converted, and hands the driver one tuple per row. Every type keeps
its own processor; a timestamp's on SQLite is one function (`core/types.py` utc_text, since
stop 20 also the ORM's) that gives, character for character, the text SQLAlchemy's DATETIME
would (`tests/dispatch/test_bulk.py` checks every column type of every table both ways, and
the timestamps against SQLAlchemy's own chain). A statement this cannot reproduce exactly
— one whose columns get Python-side defaults, expanding or literal-execute parameters,
RETURNING — and every dialect but SQLite go through SQLAlchemy as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class _Plan:
    """How one shape is executed: the SQL, and how a row becomes its parameters."""

    sql: str
    take: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # the row's values, one per `?`
    converts: tuple[tuple[int, Convert], ...]  # (position, conversion), where a type has one
    fixed: dict[str, Any]  # values bound in the statement itself (a compare-and-set's status)

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        values = self.take({**row, **self.fixed} if self.fixed else row)
        if not self.converts:
            return values
        converted = list(values)
        for position, convert in self.converts:
            converted[position] = convert(converted[position])
        return tuple(converted)


# (statement, keys of its rows) -> how to execute it; None: through SQLAlchemy.
_PLANS: dict[tuple[UpdateBase, tuple[str, ...]], _Plan | None] = {}
# Shapes kept at most: the platform's statements are module constants, a few dozen shapes.
_MOST_PLANS = 512


def execute_many(conn: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> int:
    """Execute `statement` once per row in the connection's transaction, as
    `conn.execute(statement, rows)` would; the rows it changed (for an UPDATE: that matched).
    For the platform's own statements, built once (the shapes are cached by statement)."""
    if not rows:
        return 0
    plan = _plan_for(conn.dialect, statement, tuple(rows[0])) if conn.dialect.name == "sqlite" else None
    if plan is None:
        return int(conn.execute(statement, list(rows)).rowcount)
    try:
        params = [plan.parameters(row) for row in rows]
    except KeyError:  # a row without a key the first had: SQLAlchemy's own error
        return int(conn.execute(statement, list(rows)).rowcount)
    return int(conn.exec_driver_sql(plan.sql, params).rowcount)


def _plan_for(dialect: Dialect, statement: UpdateBase, keys: tuple[str, ...]) -> _Plan | None:
    shape = (statement, keys)
    if shape in _PLANS:
        return _PLANS[shape]
    plan = _make_plan(dialect, statement, keys)  # two threads may both build it: the same plan
    if len(_PLANS) >= _MOST_PLANS:
        _PLANS.clear()
    _PLANS[shape] = plan
    return plan


def _make_plan(dialect: Dialect, statement: UpdateBase, keys: tuple[str, ...]) -> _Plan | None:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    assert isinstance(compiled, SQLCompiler)
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.effective_returning
        or not compiled.positional
        or compiled.positiontup is None
    ):
        return None
    given = set(keys)
    names: list[str] = []
    converts: list[tuple[int, Convert]] = []
    fixed: dict[str, Any] = {}
    for position, name in enumerate(compiled.positiontup):
        bind = compiled.binds[name]
        if name not in given:
            if bind.callable is not None or bind.required:
                return None
            fixed[name] = bind.value
        names.append(name)
        convert = _converter(dialect, bind.type)
        if convert is not None:
            converts.append((position, convert))
    if len(names) == 1:
        (only,) = names
        return _Plan(compiled.string, lambda row: (row[only],), tuple(converts), fixed)
    return _Plan(compiled.string, itemgetter(*names), tuple(converts), fixed)


def _converter(dialect: Dialect, type_: Any) -> Convert | None:
    # UTCDateTime's own on SQLite: types.utc_text (isoformat, the last one remembered).
    processor: Convert | None = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor
