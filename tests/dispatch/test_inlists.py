"""SQLite's IN lists bound in a few fixed shapes (core/inlists.py), and pools that hand out the
connection returned last (core/db.py): what keeps a backlog's varied batch sizes from growing
every pooled connection's statement and page caches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, insert, select, update

from dispatch.core import db as core_db
from dispatch.core.config import get_settings
from dispatch.core.inlists import LONGEST_PADDED, pad_in_lists, padded_size


def test_shapes_are_powers_of_two() -> None:
    assert [padded_size(n) for n in range(1, 10)] == [1, 2, 4, 4, 8, 8, 8, 8, 16]
    assert padded_size(129) == 256


def test_every_list_is_padded_with_its_last_value() -> None:
    statement = "SELECT t.id FROM t WHERE t.id IN (?, ?, ?) AND (t.x NOT IN (?, ?, ?, ?, ?)) AND t.y = ?"
    padded = pad_in_lists(statement, (1, 2, 3, 5, 6, 7, 8, 9, "y"))
    assert padded == (
        "SELECT t.id FROM t WHERE t.id IN (?, ?, ?, ?) AND (t.x NOT IN (?, ?, ?, ?, ?, ?, ?, ?)) AND t.y = ?",
        (1, 2, 3, 3, 5, 6, 7, 8, 9, 9, 9, 9, "y"),
    )


@pytest.mark.parametrize(
    ("statement", "parameters"),
    [
        ("SELECT 1 FROM t WHERE t.id IN (?, ?, ?, ?)", (1, 2, 3, 4)),  # already a shape
        ("SELECT 1 FROM t WHERE t.id = ?", (1,)),  # no list
        ("SELECT 1 FROM t WHERE (t.a, t.b) IN (VALUES (?, ?), (?, ?), (?, ?))", (1, 2, 3, 4, 5, 6)),
        ("SELECT 1 FROM t WHERE t.id IN (?, ?, ?) AND t.note = 'why?'", (1, 2, 3)),  # a ? in a literal
        ("SELECT 1 FROM t WHERE t.id IN (?, ?, ?)", (1, 2)),  # counts that do not agree
        (
            "SELECT 1 FROM t WHERE t.id IN (" + ", ".join("?" * (LONGEST_PADDED + 1)) + ")",
            tuple(range(LONGEST_PADDED + 1)),
        ),
    ],
)
def test_statements_left_as_they_are(statement: str, parameters: tuple[Any, ...]) -> None:
    assert pad_in_lists(statement, parameters) is None


@pytest.fixture
def sqlite_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The platform's own SQLite engine (on the PostgreSQL half of the suite too)."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shapes.db'}")
    get_settings.cache_clear()
    core_db.dispose_engines()
    return core_db.get_engine(write=True)


def test_the_sqlite_engine_binds_lists_of_every_size_in_a_few_shapes(sqlite_engine: Any) -> None:
    table = Table("numbers", MetaData(), Column("id", Integer, primary_key=True), Column("seen", Integer))
    table.create(sqlite_engine)
    executed: list[str] = []

    @event.listens_for(sqlite_engine, "after_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        executed.append(statement)

    with sqlite_engine.begin() as conn:
        conn.execute(insert(table), [{"id": i, "seen": 0} for i in range(1, 301)])
        executed.clear()
        for n in range(1, 101):
            ids = list(range(n, 2 * n))
            assert conn.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars().all() == ids
            outside = conn.execute(select(table.c.id).where(table.c.id.not_in(ids), table.c.id < 2 * n))
            assert outside.scalars().all() == list(range(1, n))
            changed = conn.execute(update(table).where(table.c.id.in_(ids)).values(seen=table.c.seen + 1))
            assert changed.rowcount == n  # a repeated value changes its row once
        shapes = {statement for statement in executed if "IN (" in statement}
        counts = (
            conn.execute(select(table.c.seen).where(table.c.id.in_([100, 150, 199, 200]))).scalars().all()
        )
    # id k was in the lists [n, 2n) with k/2 < n <= k: each updated once, none twice
    assert counts == [50, 25, 1, 0]
    # three statements, 100 sizes each: 1, 2, 4, ... 128 values, eight shapes of each
    assert len(shapes) == 3 * 8


def test_pools_hand_out_the_connection_returned_last(sqlite_engine: Any) -> None:
    held = [sqlite_engine.connect() for _ in range(3)]
    raw = [conn.connection.dbapi_connection for conn in held]
    for conn in held:
        conn.close()  # returned in the order they were taken: the last one is raw[2]
    with sqlite_engine.connect() as again:
        assert again.connection.dbapi_connection is raw[2]
