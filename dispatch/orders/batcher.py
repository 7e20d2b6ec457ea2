"""The API process's intake writer: group commit for `POST /api/requests`.

Each request handler hands its checked request to the batcher and waits; the batcher
(`core/batching.py`) stores everything waiting in one transaction and answers every handler
once that transaction committed. The batch's reads (its keys, its elders) are done before the
write transaction, so that SQLite's one write lock is held for the inserts alone.

A batch that fails as a whole (a database error, or a key first used by someone else between
the reads and the inserts) is written again one request at a time, each read and written in
one transaction (`intake.take_requests`), so that one request can never take the others down.
"""

from __future__ import annotations

import anyio

from dispatch.core.batching import GroupCommit, each_alone_if_it_fails, each_alone_if_it_fails_async
from dispatch.core.db import session_scope, write_on_loop
from dispatch.orders.intake import (
    Checked,
    IntakeItem,
    Outcome,
    check_requests,
    store_checked,
    take_requests,
)

MAX_BATCH = 256


def _check(items: list[IntakeItem]) -> Checked:
    with session_scope(write=False) as reading:
        return check_requests(reading, items)


def _write(items: list[IntakeItem]) -> list[Outcome]:
    checked = _check(items)
    with session_scope() as session:
        return store_checked(session, checked)


async def _write_on_loop(items: list[IntakeItem]) -> list[Outcome]:
    checked = await anyio.to_thread.run_sync(_check, items)
    return await write_on_loop(lambda session: store_checked(session, checked))


def _write_alone(items: list[IntakeItem]) -> list[Outcome]:
    with session_scope() as session:
        return take_requests(session, items)


def write_batch(items: list[IntakeItem]) -> list[Outcome | BaseException]:
    """Store a batch; if its transaction fails, each request alone (its own error, or stored)."""
    return each_alone_if_it_fails(items, _write, "intake requests", alone=_write_alone)


class IntakeBatcher(GroupCommit[IntakeItem, Outcome]):
    max_batch = MAX_BATCH

    def _write(self, items: list[IntakeItem]) -> list[Outcome | BaseException]:
        return write_batch(items)

    async def _write_async(self, items: list[IntakeItem]) -> list[Outcome | BaseException]:
        """The reads on a thread, the inserts on the loop (db.write_on_loop); alone on a thread."""
        return await each_alone_if_it_fails_async(items, _write_on_loop, "intake requests", _write_alone)
