"""Engine, sessions and migrations. The owner of a session (request or job) is the only one who commits.

SQLite needs care when several processes write: a deferred transaction that reads and
then writes fails at once with SQLITE_BUSY when another writer committed in between, and
the busy timeout does not help. So writing sessions start with BEGIN IMMEDIATE (they wait
for the write lock up front, under the busy timeout) and reading sessions stay deferred.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from dispatch.core.config import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Engines hide statement parameters (names, phones, care notes) from their logs and from the
# text of their exceptions, which end up in tracebacks.


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=10,
        max_overflow=20,
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, decide how a transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_ENGINES: dict[str, tuple[Engine, Engine]] = {}


def _engines(url: str) -> tuple[Engine, Engine]:
    """(writer, reader) engines for a URL; the same engine twice for PostgreSQL."""
    pair = _ENGINES.get(url)
    if pair is None:
        if url.startswith("sqlite"):
            pair = (_sqlite_engine(url, immediate=True), _sqlite_engine(url, immediate=False))
        else:
            engine = create_engine(
                url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True
            )
            pair = (engine, engine)
        _ENGINES[url] = pair
    return pair


def get_engine(*, write: bool = True) -> Engine:
    writer, reader = _engines(get_settings().effective_database_url)
    return writer if write else reader


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (after a fork, or between tests)."""
    for writer, reader in _ENGINES.values():
        writer.dispose()
        reader.dispose()
    _ENGINES.clear()


def new_session(*, write: bool = True) -> Session:
    return Session(get_engine(write=write), expire_on_commit=False)


@contextmanager
def session_scope(*, write: bool = True) -> Iterator[Session]:
    """A unit of work for jobs and scripts: commit on success, roll back on error."""
    session = new_session(write=write)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work. Write methods take the SQLite write lock up front."""
    with session_scope(write=request.method not in _READ_METHODS) as session:
        yield session


# scope="function": the commit runs when the endpoint returns, before the answer is sent. With
# FastAPI's default ("request") it ran after the answer was sent, so a 202 could go out for a
# request whose commit then failed, and a client's next call could miss its own last write
# (seen on PostgreSQL: a check-out right after a check-in found the visit not yet started).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def migrate(url: str | None = None) -> None:
    """Apply every Alembic migration (all heads) to the configured database."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().effective_database_url)
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "heads")
