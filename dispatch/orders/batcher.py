"""The API process's intake writer: group commit for `POST /api/requests`.

Each request handler hands its checked request to the batcher and waits; the batcher
(`core/batching.py`) stores everything waiting in one transaction (`intake.take_requests`)
and answers every handler once that transaction committed.

A batch that fails as a whole (a database error) is written again one request at a time, so
that one request can never take the others down with it.
"""

from __future__ import annotations

from dispatch.core.batching import GroupCommit, each_alone_if_it_fails
from dispatch.core.db import session_scope
from dispatch.orders.intake import IntakeItem, Outcome, take_requests

MAX_BATCH = 256


def _write(items: list[IntakeItem]) -> list[Outcome]:
    with session_scope() as session:
        return take_requests(session, items)


def write_batch(items: list[IntakeItem]) -> list[Outcome | BaseException]:
    """Store a batch; if its transaction fails, each request alone (its own error, or stored)."""
    return each_alone_if_it_fails(items, _write, "intake requests")


class IntakeBatcher(GroupCommit[IntakeItem, Outcome]):
    max_batch = MAX_BATCH

    def _write(self, items: list[IntakeItem]) -> list[Outcome | BaseException]:
        return write_batch(items)
