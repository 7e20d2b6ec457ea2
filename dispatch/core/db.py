"""Engine, sessions and migrations. The owner of a session (request or job) is the only one who commits.

SQLite needs care when several processes write: a deferred transaction that reads and
then writes fails at once with SQLITE_BUSY when another writer committed in between, and
the busy timeout does not help. So writing sessions start with BEGIN IMMEDIATE and reading sessions stay deferred.

Writers first wait for the write lock in the kernel (`writelock.py`: a file lock that wakes
the next writer the moment the holder commits), not in SQLite's busy handler, which sleeps
in steps of up to 100 ms. BEGIN IMMEDIATE and the busy timeout stay, for writers that do not
take the file lock (migrations, other tools).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from dispatch.core import jsontext
from dispatch.core.config import get_settings
from dispatch.core.inlists import pad_in_lists_of
from dispatch.core.writelock import GatedConnection

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Engines hide statement parameters (names, phones, care notes) from their logs and from the
# text of their exceptions, which end up in tracebacks.
# Pools hand out the connection returned last (LIFO): once a burst has opened many connections,
# a process that needs two at a time keeps using the same two, with their SQLite page and
# statement caches warm, instead of taking every open one in turn and growing each one's caches
# (FIFO, SQLAlchemy's default).
# JSON columns are written and read by orjson (core/jsontext.py), on either database.


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            "factory": GatedConnection,
        },
        pool_size=10,
        max_overflow=20,
        pool_use_lifo=True,
        hide_parameters=True,
        json_serializer=jsontext.dumps,
        json_deserializer=jsontext.loads,
    )
    pad_in_lists_of(engine)

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
        if isinstance(dbapi_conn, GatedConnection):
            dbapi_conn.lock_timeout = get_settings().db_lock_timeout_seconds

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not immediate:
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_conn = conn.connection.dbapi_connection
        dbapi_conn.hold_write_lock()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_conn.rollback()  # lets go of the file lock
            raise

    return engine


_ENGINES: dict[str, tuple[Engine, Engine]] = {}


def _bound_lock_waits(engine: Engine) -> None:
    """PostgreSQL: a lock wait is bounded as on SQLite (GatedConnection.lock_timeout); past it
    the statement fails (55P03) instead of holding its caller, and the API answers 503."""
    milliseconds = max(1, round(get_settings().db_lock_timeout_seconds * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET lock_timeout = {milliseconds}")
        dbapi_conn.autocommit = autocommit


def _engines(url: str) -> tuple[Engine, Engine]:
    """(writer, reader) engines for a URL; the same engine twice for PostgreSQL."""
    pair = _ENGINES.get(url)
    if pair is None:
        if url.startswith("sqlite"):
            pair = (_sqlite_engine(url, immediate=True), _sqlite_engine(url, immediate=False))
        else:
            engine = create_engine(
                url,
                pool_size=10,
                max_overflow=20,
                pool_use_lifo=True,
                pool_pre_ping=True,
                hide_parameters=True,
                json_serializer=jsontext.dumps,
                json_deserializer=jsontext.loads,
            )
            _bound_lock_waits(engine)
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


T = TypeVar("T")


async def write_on_loop(work: Callable[[Session], T]) -> T:
    """Run a short write unit of work and commit it, for the API's batch writers.

    On SQLite the transaction runs on the calling event loop's own thread, once a helper
    thread has waited for the write lock. On a worker thread it ran slower than it should
    under load: SQLite gives up the GIL around every statement, and each time the writer had
    to win it back from the busy event loop (up to the 5 ms switch interval), so the one
    write lock of the district was held several times longer than the work took (bench/load.py
    with the holds timed). Elsewhere (PostgreSQL, many writers at once) it runs on a thread."""
    engine = get_engine(write=True)
    if engine.dialect.name != "sqlite":
        return await anyio.to_thread.run_sync(_in_scope, work)
    with engine.connect() as connection:
        gated = connection.connection.dbapi_connection
        try:
            if isinstance(gated, GatedConnection) and not gated.try_write_lock():  # else: wait off the loop
                await anyio.to_thread.run_sync(gated.hold_write_lock, abandon_on_cancel=False)
            with Session(bind=connection, expire_on_commit=False) as session:
                result = work(session)
                session.commit()
                return result
        finally:
            if isinstance(gated, GatedConnection):
                gated.rollback()  # nothing if it committed; lets go of the lock if it never began


def _in_scope(work: Callable[[Session], T]) -> T:
    with session_scope() as session:
        return work(session)


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# session.info key: the HTTP request a session is the unit of work of.
REQUEST_KEY = "eldercare_http_request"
# Write units of work at once per API process. Must stay below the thread pool's size (anyio's
# default is 40) and within the writer pool (10 + 20 overflow); see get_session.
WRITE_CONCURRENCY = 16


def _write_gate(request: Request) -> asyncio.Semaphore:
    gate = getattr(request.app.state, "write_gate", None)
    if gate is None:
        gate = request.app.state.write_gate = asyncio.Semaphore(WRITE_CONCURRENCY)
    return gate


def _finish(session: Session, error: BaseException | None) -> None:
    try:
        if error is None:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work. Write methods take the SQLite write lock up front.

    Why a gate for writers: a sync endpoint runs in the thread pool, and so does the validation
    of its response, after it returned but before its transaction commits. If every thread of
    the pool held a writer waiting for SQLite's write lock, the writer holding the lock could
    never get a thread to finish, and the API would stall until the busy timeout (bench/load.py
    found it at 64 concurrent clients). With fewer writers than threads, a thread is always
    free for the lock holder. The commit runs on a thread of its own for the same reason."""
    write = request.method not in _READ_METHODS
    gate = _write_gate(request) if write else contextlib.nullcontext()
    async with gate:
        session = new_session(write=write)
        session.info[REQUEST_KEY] = request  # whose unit of work it is, for the audit log
        try:
            yield session
        except BaseException as exc:
            await anyio.to_thread.run_sync(_finish, session, exc, limiter=anyio.CapacityLimiter(1))
            raise
        await anyio.to_thread.run_sync(_finish, session, None, limiter=anyio.CapacityLimiter(1))


# scope="function": the unit of work ends (commits) before the response is sent, so a client
# that got 202 can rely on the request being stored; the default would commit after sending.
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
