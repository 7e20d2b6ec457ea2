"""SQLite: `IN (...)` lists bound in a few fixed shapes, so that batches of every size reuse a
handful of prepared statements.

SQLAlchemy sends a list bound to `IN` as one `?` per value, so to SQLite a list of 7 ids and a
list of 8 are two different statements. Python's sqlite3 keeps the statements it prepared in
a cache per connection (128, least recently used first out); the API's and the workers'
batches vary in size with the load, so under a backlog each size of each query is prepared
again and held in every pooled connection's cache: memory that grows until every connection's
cache is full of sizes, and a prepare (~15-35 us here) where a cached statement would do.

Every such list is padded to the next power of two by repeating its last value (`x IN (1, 2,
3, 3)` is `x IN (1, 2, 3)`, and so is `NOT IN`): about a dozen shapes per query at most. The
statement is only rewritten when its `?` count matches its parameters exactly (a `?` inside a
string literal would break the count: such a statement is left as it is), and never for
executemany. PostgreSQL is left alone: psycopg prepares only statements it sees five times
and keeps at most a hundred per connection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

# `IN (?, ?, ?)` as SQLAlchemy renders an expanded list (also the tail of `NOT IN (...)`).
_IN_LIST = re.compile(r"IN \((\?(?:, \?)*)\)")
# Lists longer than this are left as they are (SQLite allows 32,766 parameters in a statement).
LONGEST_PADDED = 4096


def padded_size(n: int) -> int:
    """The shape a list of `n` values is bound in: the next power of two."""
    return 1 << (n - 1).bit_length() if n > 1 else n


def pad_in_lists(statement: str, parameters: Sequence[Any]) -> tuple[str, tuple[Any, ...]] | None:
    """`statement` and `parameters` with every `IN (?, ...)` list padded to its shape; None when
    nothing needs padding or the statement cannot be read safely."""
    if "IN (?" not in statement:
        return None
    matches = [m for m in _IN_LIST.finditer(statement) if _needs_padding(m)]
    if not matches or statement.count("?") != len(parameters):
        return None
    params = list(parameters)
    parts: list[str] = []
    done = 0  # statement text copied so far
    shift = 0  # parameters added so far
    for match in matches:
        first = statement.count("?", 0, match.start()) + shift
        n = match.group(1).count("?")
        extra = padded_size(n) - n
        params[first + n : first + n] = [params[first + n - 1]] * extra
        shift += extra
        parts.append(statement[done : match.end(1)])
        parts.append(", ?" * extra)
        done = match.end(1)
    parts.append(statement[done:])
    return "".join(parts), tuple(params)


def _needs_padding(match: re.Match[str]) -> bool:
    n = match.group(1).count("?")
    return n <= LONGEST_PADDED and padded_size(n) != n


def pad_in_lists_of(engine: Engine) -> None:
    """Rewrite the IN lists of every single execution on `engine` (a SQLite engine)."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _pad(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
    ) -> tuple[str, Any]:
        if executemany or not isinstance(parameters, tuple | list):
            return statement, parameters
        return pad_in_lists(statement, parameters) or (statement, parameters)
