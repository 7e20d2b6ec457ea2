"""The API process's intake writer: group commit for `POST /api/requests`.

Each request handler hands its checked request to the batcher and waits. The batcher takes
everything waiting, stores it in one transaction (`intake.take_requests`) on a thread of its
own, and answers every handler once that transaction committed. While a batch is being
written the next one gathers, so a quiet system answers at once and a busy one commits
many requests per transaction instead of queueing them behind SQLite's single write lock.

A batch that fails as a whole (a database error) is written again one request at a time, so
that one request can never take the others down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import anyio

from dispatch.core.db import session_scope
from dispatch.orders.intake import IntakeItem, Outcome, take_requests

log = logging.getLogger(__name__)

MAX_BATCH = 256


@dataclass
class _Waiting:
    item: IntakeItem
    future: asyncio.Future[Outcome]


def _write(items: list[IntakeItem]) -> list[Outcome]:
    with session_scope() as session:
        return take_requests(session, items)


def write_batch(items: list[IntakeItem]) -> list[Outcome | BaseException]:
    """Store a batch; if its transaction fails, each request alone (its own error, or stored)."""
    try:
        return list(_write(items))
    except Exception:
        if len(items) == 1:
            raise
        log.warning(
            "an intake batch of %d failed; writing its requests one by one", len(items), exc_info=True
        )
    results: list[Outcome | BaseException] = []
    for item in items:
        try:
            results.append(_write([item])[0])
        except Exception as exc:
            results.append(exc)
    return results


class IntakeBatcher:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[_Waiting | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._limiter = anyio.CapacityLimiter(1)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self, timeout: float = 30.0) -> None:
        """Write what is still waiting, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("intake batcher did not finish within %.0f s", timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, item: IntakeItem) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(item, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                waiting = self._queue.get_nowait()
                if waiting is None:
                    stopping = True  # write this last batch, then stop
                    break
                batch.append(waiting)
            try:
                results = await anyio.to_thread.run_sync(
                    write_batch, [w.item for w in batch], limiter=self._limiter, abandon_on_cancel=False
                )
            except Exception as exc:  # a single request that failed outright
                results = [exc] * len(batch)
            for waiting, result in zip(batch, results, strict=True):
                if waiting.future.done():  # its client went away; the request is stored all the same
                    continue
                if isinstance(result, BaseException):
                    waiting.future.set_exception(result)
                else:
                    waiting.future.set_result(result)
