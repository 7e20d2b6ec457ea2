"""Websocket consoles for the load benchmark.

`Observer` runs in the load generator's own event loop: it records when each request's
`request.offered` and `request.assigned` frames arrive (the pipeline latency) and hands
offers to the provider that accepts them. `run_fanout` runs many consoles in a process of
their own and reports how many frames each received and how late.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _wsclient import LeanConsole
from websockets.asyncio.client import connect

from dispatch.core.config import Settings

# The measuring processes' youngest-generation GC threshold when settled (bench/load.py
# --client-gc): the platform's GC_THRESHOLD default.
CLIENT_GC_THRESHOLD: int = Settings.model_fields["gc_threshold"].default


def ws_url(base: str, token: str, since: int = 0) -> str:
    return f"{base.replace('http://', 'ws://')}/ws/events?token={token}&since={since}"


@dataclass
class Observer:
    """One operator console that notes, per request, when its offer and assignment arrived."""

    url: str
    on_offer: Callable[[dict[str, Any]], None] | None = None
    offered: dict[int, float] = field(default_factory=dict)
    assigned: dict[int, float] = field(default_factory=dict)
    escalated: dict[int, str] = field(default_factory=dict)
    escalated_at: dict[int, float] = field(default_factory=dict)
    frames: int = 0
    last_seq: int = 0
    closed_with: str = ""
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(ready))
        await asyncio.wait_for(ready.wait(), timeout=30)

    async def _run(self, ready: asyncio.Event) -> None:
        async with connect(self.url, max_size=2**22, max_queue=None, open_timeout=30) as ws:
            ready.set()
            try:
                async for message in ws:
                    self._note(json.loads(message))
            except Exception as exc:  # a cut-off console: report it, do not hide it
                self.closed_with = repr(exc)

    def _note(self, frame: dict[str, Any]) -> None:
        now = time.perf_counter()
        self.frames += 1
        self.last_seq = max(self.last_seq, int(frame.get("seq") or 0))
        kind, request_id = frame.get("type"), frame.get("request_id")
        if kind == "request.offered":
            self.offered.setdefault(request_id, now)
            if self.on_offer is not None:
                self.on_offer(frame)
        elif kind == "request.assigned":
            self.assigned.setdefault(request_id, now)
        elif kind == "request.escalated":
            self.escalated[request_id] = (frame.get("data") or {}).get("reason", "")
            self.escalated_at.setdefault(request_id, now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# ---- many consoles in a process of their own -------------------------------------------------


@dataclass
class ConsoleStats:
    frames: int = 0
    delays_ms: list[float] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0
    error: str = ""
    connected: bool = False


async def _console(url: str, stats: ConsoleStats, stop: asyncio.Event, sample_every: int) -> None:
    """One console of the fan-out: a lean client (bench/_wsclient.py), so that 200 of them in
    one process measure the server's delivery rather than their own Python per message."""
    try:
        console = await LeanConsole.connect(url, stats, sample_every)
        stats.connected = True
        await stop.wait()
        if console.close_code is not None:
            stats.error = f"closed {console.close_code}"  # cut off by the server
        await console.close()
    except Exception as exc:
        stats.error = repr(exc)
    finally:
        stats.connected = stats.connected or bool(stats.error)


async def _stalled(url: str, stop: asyncio.Event) -> str:
    """A console that connects and never reads: the server must cut it off, not stall."""
    try:
        async with connect(url, max_queue=1, open_timeout=60) as ws:
            await stop.wait()
            return "still open" if ws.state.name == "OPEN" else f"closed {ws.close_code}"
    except Exception as exc:
        return f"closed: {exc!r}"


async def _fanout_main(urls: list[str], stall_url: str | None, conn: Any, sample_every: int) -> None:
    stop = asyncio.Event()
    stats = [ConsoleStats() for _ in urls]
    tasks = [
        asyncio.create_task(_console(u, s, stop, sample_every)) for u, s in zip(urls, stats, strict=True)
    ]
    stalled = asyncio.create_task(_stalled(stall_url, stop)) if stall_url else None
    while not all(s.connected for s in stats):
        await asyncio.sleep(0.05)
    conn.send("ready")
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    stall_result = await stalled if stalled else ""
    conn.send(
        {
            "consoles": [(s.frames, s.delays_ms, s.first, s.last, s.error) for s in stats],
            "stalled": stall_result,
        }
    )


def _fanout_process(
    urls: list[str], stall_url: str | None, conn: Any, sample_every: int, gc_threshold: int
) -> None:
    if gc_threshold:  # the load generator's setting (bench/load.py --client-gc)
        from dispatch.core.collector import settle_collector

        settle_collector(gc_threshold)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] ships it
        pass
    asyncio.run(_fanout_main(urls, stall_url, conn, sample_every))


class FanoutConsoles:
    """Start N consoles (and one stalled one) in a child process; collect their stats."""

    def __init__(
        self, urls: list[str], stall_url: str | None, sample_every: int = 10, gc_threshold: int = 0
    ) -> None:
        self.parent, child = mp.Pipe()
        self.process = mp.get_context("spawn").Process(
            target=_fanout_process, args=(urls, stall_url, child, sample_every, gc_threshold), daemon=True
        )

    def start(self, timeout: float = 120) -> None:
        self.process.start()
        if not self.parent.poll(timeout):
            raise RuntimeError("consoles did not connect in time")
        assert self.parent.recv() == "ready"

    def stop(self, timeout: float = 60) -> dict[str, Any]:
        self.parent.send("stop")
        if not self.parent.poll(timeout):
            raise RuntimeError("consoles did not report")
        result: dict[str, Any] = self.parent.recv()
        self.process.join(timeout=10)
        return result
