"""The API process's intake writer: group commit for `POST /api/requests`.

Each request handler hands its checked request to the batcher and waits; the batcher
(`core/batching.py`) stores everything waiting in one transaction and answers every handler
once that transaction committed. The transaction runs on the event loop's thread
(db.write_on_loop) and reads only the batch's elders: its keys are not looked up, because
under load nearly every key is new; a key used before fails the insert on its unique
constraint instead.

A batch that fails (a key used before, a database error) is taken again on a thread with its
keys read (`intake.take_requests`: replays answered, refusals given), and if that fails too,
one request at a time, so that one request can never take the others down.
"""

from __future__ import annotations

import logging

import anyio
from sqlmodel import Session

from dispatch.core.batching import GroupCommit, each_alone_if_it_fails
from dispatch.core.db import session_scope, write_on_loop
from dispatch.orders.intake import IntakeItem, Outcome, check_requests, store_checked, take_requests

log = logging.getLogger(__name__)

MAX_BATCH = 256


def _optimistic(session: Session, items: list[IntakeItem]) -> list[Outcome]:
    """The batch in `session`, its keys not looked up (a key used before fails the insert)."""
    return store_checked(session, check_requests(session, items, read_keys=False))


def _write(items: list[IntakeItem]) -> list[Outcome]:
    with session_scope() as session:
        return _optimistic(session, items)


def _read_first(items: list[IntakeItem]) -> list[Outcome]:
    with session_scope() as session:
        return take_requests(session, items)


def write_batch(items: list[IntakeItem]) -> list[Outcome | BaseException]:
    """Store a batch; if its transaction fails, again with its keys read, then each request alone."""
    try:
        return list(_write(items))
    except Exception:
        log.info("an intake batch of %d failed; taking it again with its keys read", len(items))
    return each_alone_if_it_fails(items, _read_first, "intake requests")


class IntakeBatcher(GroupCommit[IntakeItem, Outcome]):
    max_batch = MAX_BATCH

    def _write(self, items: list[IntakeItem]) -> list[Outcome | BaseException]:
        return write_batch(items)

    async def _write_async(self, items: list[IntakeItem]) -> list[Outcome | BaseException]:
        """On the loop (db.write_on_loop); if that fails, as write_batch() does, on a thread."""
        try:
            return list(await _write_on_loop(items))
        except Exception:
            log.info("an intake batch of %d failed; taking it again with its keys read", len(items))
        return await anyio.to_thread.run_sync(each_alone_if_it_fails, items, _read_first, "intake requests")


async def _write_on_loop(items: list[IntakeItem]) -> list[Outcome]:
    return await write_on_loop(lambda session: _optimistic(session, items))
