"""SQLite's write lock, queued in the kernel: an exclusive `flock` on a file next to the database.

SQLite's own busy handler sleeps in growing steps (up to 100 ms) however soon the lock frees,
so under load the lock sat free while a dozen writers slept (bench/load.py: 62 % of the API's
samples were writers asleep in BEGIN IMMEDIATE). Every writing connection, in every process,
first takes this lock and holds it until its COMMIT or ROLLBACK (see `GatedConnection`): a
waiter is woken the moment the holder lets go, and a process that dies lets go with it.

A wait is bounded like SQLite's busy timeout: past it the writer fails with "database is
locked" instead of hanging, so a bug that opens a second writer while holding the first
costs one request, not every writer of the district. The blocking `flock` then runs on a
helper thread; if it succeeds after the waiter gave up, the helper lets go at once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import threading
from typing import Any


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def lock_within(fd: int, timeout: float) -> None:
    """Take the exclusive lock on `fd`, waiting at most `timeout` seconds."""
    if _try_lock(fd):
        return
    done = threading.Event()
    abandoned = False
    errors: list[OSError] = []
    guard = threading.Lock()

    def wait() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without the GIL; woken on the holder's unlock
        except OSError as exc:
            errors.append(exc)
            done.set()
            return
        with guard:
            if abandoned:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            done.set()

    threading.Thread(target=wait, name="sqlite-write-lock", daemon=True).start()
    if not done.wait(timeout):
        with guard:
            if not done.is_set():
                abandoned = True
                raise sqlite3.OperationalError(f"database is locked (waited {timeout:.0f} s to write)")
    if errors:
        raise errors[0]


class GatedConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions hold the database's file lock.

    `hold_write_lock` (called by the engine's "begin" event, before BEGIN IMMEDIATE) takes it;
    COMMIT, ROLLBACK and close let it go. A connection inherited through a fork never touches
    the lock: its descriptor shares the parent's, which only the parent may let go."""

    lock_timeout: float = 30.0

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._pid = os.getpid()
        self._lock_fd: int | None = None
        self._holding = False
        if database and database != ":memory:" and not database.startswith("file:"):
            self._lock_fd = os.open(f"{database}-writelock", os.O_RDWR | os.O_CREAT, 0o600)

    def hold_write_lock(self) -> None:
        if self._lock_fd is not None and not self._holding and os.getpid() == self._pid:
            lock_within(self._lock_fd, self.lock_timeout)
            self._holding = True

    def try_write_lock(self) -> bool:
        """Take the lock only if it is free now (never waits); True if this connection holds it."""
        if self._lock_fd is None or os.getpid() != self._pid:
            return True  # no file lock here (a memory database, a forked child): nothing to take
        if not self._holding and _try_lock(self._lock_fd):
            self._holding = True
        return self._holding

    def _let_go(self) -> None:
        if self._holding and os.getpid() == self._pid:
            self._holding = False
            assert self._lock_fd is not None
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._let_go()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._let_go()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._lock_fd is not None:
                self._let_go()
                os.close(self._lock_fd)  # in a forked child: the parent's lock is untouched
                self._lock_fd = None
