"""Group commit: callers hand over items and wait; one writer stores what waits together.

The writer takes everything waiting (up to `max_batch`), writes it with `_write` on a thread
of its own, and answers each caller once the batch committed: with its result, or with its
own error. While a batch is being written the next one gathers, so a quiet process answers
at once and a busy one commits many items per transaction instead of queueing them behind
SQLite's single write lock. Used by intake (`orders/batcher.py`), the API's short write units
of work (`core/writer.py`) and accepts (`orders/accepts.py`); and, for reads, by the lookup
of callers' accounts (`core/auth.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Waiting(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result]


def each_alone_if_it_fails(
    items: list[Item],
    write: Callable[[list[Item]], Sequence[Result | BaseException]],
    what: str,
    alone: Callable[[list[Item]], Sequence[Result | BaseException]] | None = None,
) -> list[Result | BaseException]:
    """`write(items)` as one transaction; if that fails as a whole (a database error), each
    item again in a transaction of its own (`alone`, else `write`), so that one item can never
    take the others down."""
    alone = alone or write
    try:
        return list(write(items))
    except Exception as exc:
        if len(items) == 1 and alone is write:
            return [exc]
        log.warning("a batch of %d %s failed; writing them one by one", len(items), what, exc_info=True)
    return each_alone(items, alone)


async def each_alone_if_it_fails_async(
    items: list[Item],
    write: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]],
    what: str,
    alone: Callable[[list[Item]], Sequence[Result | BaseException]],
) -> list[Result | BaseException]:
    """each_alone_if_it_fails() for a batch written by a coroutine; the items alone on a thread."""
    try:
        return list(await write(items))
    except Exception:
        log.warning("a batch of %d %s failed; writing them one by one", len(items), what, exc_info=True)
    return await anyio.to_thread.run_sync(each_alone, items, alone)


def each_alone(
    items: list[Item], alone: Callable[[list[Item]], Sequence[Result | BaseException]]
) -> list[Result | BaseException]:
    """Each item in a transaction of its own: its result, or its own error."""
    results: list[Result | BaseException] = []
    for item in items:
        try:
            results.append(alone([item])[0])
        except Exception as exc:
            results.append(exc)
    return results


class GroupCommit(ABC, Generic[Item, Result]):
    max_batch = 128

    def __init__(self) -> None:
        self._queue: asyncio.Queue[_Waiting[Item, Result] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._limiter = anyio.CapacityLimiter(1)

    @abstractmethod
    def _write(self, items: list[Item]) -> list[Result | BaseException]:
        """Store a batch in one transaction (on a worker thread); a result or error per item."""

    async def _write_async(self, items: list[Item]) -> list[Result | BaseException]:
        """How the batch is written: `_write` on a worker thread, unless a writer knows better
        (the intake and accept batchers write on the loop: db.write_on_loop)."""
        return await anyio.to_thread.run_sync(
            self._write, items, limiter=self._limiter, abandon_on_cancel=False
        )

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
            log.warning("%s did not finish within %.0f s", type(self).__name__, timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(item, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                waiting = self._queue.get_nowait()
                if waiting is None:
                    stopping = True  # write this last batch, then stop
                    break
                batch.append(waiting)
            results: list[Any]
            try:
                results = await self._write_async([w.item for w in batch])
            except Exception as exc:  # a single item that failed outright
                results = [exc] * len(batch)
            for waiting, result in zip(batch, results, strict=True):
                if waiting.future.done():  # its client went away; what it wrote stands all the same
                    continue
                if isinstance(result, BaseException):
                    waiting.future.set_exception(result)
                else:
                    waiting.future.set_result(result)
