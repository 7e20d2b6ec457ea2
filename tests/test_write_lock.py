"""SQLite's write lock queued in the kernel (dispatch/core/writelock.py): a waiting writer is
woken when the holder commits, a wait is bounded, and a holder that dies lets go."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dispatch.core.writelock import GatedConnection, _try_lock

DEADLINE = 20.0


def _connect(path: Path) -> GatedConnection:
    conn = sqlite3.connect(str(path), factory=GatedConnection, isolation_level=None, check_same_thread=False)
    assert isinstance(conn, GatedConnection)
    return conn


def _begin(conn: GatedConnection) -> None:
    conn.hold_write_lock()
    conn.execute("BEGIN IMMEDIATE")


def _is_free(path: Path) -> bool:
    fd = os.open(f"{path}-writelock", os.O_RDWR | os.O_CREAT)
    try:
        if _try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        return False
    finally:
        os.close(fd)


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "lock.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.commit()
    conn.close()
    return path


def test_a_waiting_writer_gets_the_lock_when_the_holder_commits(db: Path) -> None:
    holder, waiter = _connect(db), _connect(db)
    _begin(holder)
    holder.execute("INSERT INTO t VALUES (1)")
    got = threading.Event()

    def write() -> None:
        _begin(waiter)
        got.set()
        waiter.execute("INSERT INTO t VALUES (2)")
        waiter.commit()

    thread = threading.Thread(target=write)
    thread.start()
    assert not got.wait(0.3), "the waiter wrote while the holder held the lock"
    assert not _is_free(db)
    holder.commit()
    thread.join(DEADLINE)
    assert got.is_set()
    assert [r[0] for r in holder.execute("SELECT v FROM t ORDER BY v")] == [1, 2]
    _wait_for(lambda: _is_free(db), "the lock to be free")


def test_a_rollback_lets_go_too(db: Path) -> None:
    conn = _connect(db)
    _begin(conn)
    assert not _is_free(db)
    conn.rollback()
    assert _is_free(db)


def test_a_wait_is_bounded_and_the_abandoned_wait_lets_go(db: Path) -> None:
    holder, waiter = _connect(db), _connect(db)
    waiter.lock_timeout = 0.3
    _begin(holder)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        waiter.hold_write_lock()
    holder.commit()
    # The helper thread of the abandoned wait takes the lock once it is free and lets go at once.
    _wait_for(lambda: _is_free(db), "the abandoned wait to let go")
    third = _connect(db)
    third.lock_timeout = 5
    _begin(third)
    third.commit()


def test_a_holder_killed_mid_transaction_lets_go(db: Path) -> None:
    script = (
        "import sqlite3, sys, time\n"
        "from dispatch.core.writelock import GatedConnection\n"
        f"c = sqlite3.connect({str(db)!r}, factory=GatedConnection, isolation_level=None)\n"
        "c.hold_write_lock(); c.execute('BEGIN IMMEDIATE'); c.execute('INSERT INTO t VALUES (9)')\n"
        "print('held', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        assert not _is_free(db)
        proc.send_signal(signal.SIGKILL)
        proc.wait(DEADLINE)
        conn = _connect(db)
        conn.lock_timeout = DEADLINE
        _begin(conn)  # would time out if the dead holder's lock outlived it
        assert [r[0] for r in conn.execute("SELECT v FROM t")] == []  # its insert never committed
        conn.commit()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_forked_child_closing_its_copy_leaves_the_parents_lock(db: Path) -> None:
    conn = _connect(db)
    _begin(conn)
    pid = os.fork()
    if pid == 0:  # the child: what dispose_engines does after a fork
        try:
            conn.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert not _is_free(db), "the child let go of the parent's lock"
    conn.commit()
    assert _is_free(db)


def test_try_write_lock_takes_a_free_lock_and_never_waits_for_a_held_one(db: Path) -> None:
    """write_on_loop takes the lock on the event loop only when it is free (try_write_lock);
    held by another writer, it answers False at once and the waiting is done off the loop."""
    holder, other = _connect(db), _connect(db)
    _begin(holder)
    started = time.monotonic()
    assert other.try_write_lock() is False
    assert time.monotonic() - started < 1.0
    holder.execute("INSERT INTO t VALUES (1)")
    holder.commit()
    assert other.try_write_lock() is True and other.try_write_lock() is True  # holds it, once
    assert not _is_free(db)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (2)")
    other.commit()
    assert _is_free(db)
