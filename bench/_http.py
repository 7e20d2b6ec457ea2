"""A small, fast HTTP/1.1 load generator: keep-alive connections over asyncio streams.

httpx costs more CPU per request than the server under test does, and on 2 shared cores
that would measure the client. This client only writes a prepared request and reads the
status line, the headers it needs and the body. Open-loop: requests leave at their
scheduled times whatever the server does, and latency is measured from the scheduled time,
so a stalled server shows up as latency instead of being hidden (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_IN_FLIGHT = 512


@dataclass
class Result:
    scheduled: float
    sent: float
    done: float
    status: int
    body: bytes


@dataclass
class RunStats:
    results: list[Result] = field(default_factory=list)
    errors: int = 0
    dropped: int = 0  # could not even be sent: every connection busy for too long

    def latencies_ms(self, ok_only: bool = True) -> list[float]:
        return [(r.done - r.scheduled) * 1000 for r in self.results if not ok_only or 200 <= r.status < 300]


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        reused = self.writer is not None and not self.writer.is_closing()
        if not reused:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            # A kept-alive connection the server closed as idle (uvicorn: after 5 s) before it
            # read this request: open a new one and send it there, once.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            await self.open()
            assert self.reader is not None and self.writer is not None
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:].strip())
        body = await self.reader.readexactly(length) if length else b""
        if b"connection: close" in head.lower():
            self.writer.close()
            self.writer = None
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def build_request(
    method: str, path: str, host: str, body: Any = None, headers: dict[str, str] | None = None
) -> bytes:
    payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(payload)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Pool:
    """Up to `size` keep-alive connections; a request waits for a free one."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(Connection(host, port))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        conn = await self.free.get()
        try:
            return await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            conn.close()
            conn.writer = None
            raise
        finally:
            self.free.put_nowait(conn)

    def close(self) -> None:
        while not self.free.empty():
            self.free.get_nowait().close()


async def open_loop(
    pool: Pool,
    make: Callable[[int], bytes],
    *,
    rate: float,
    duration: float,
    on_result: Callable[[int, Result], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunStats:
    """Send `rate` requests per second for `duration` seconds, each at its scheduled time."""
    stats = RunStats()
    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    in_flight: set[asyncio.Task[None]] = set()

    async def one(i: int, scheduled: float) -> None:
        raw = make(i)
        sent = time.perf_counter()
        try:
            status, body = await pool.request(raw)
        except Exception:
            stats.errors += 1
            return
        result = Result(scheduled, sent, time.perf_counter(), status, body)
        stats.results.append(result)
        if on_result is not None:
            on_result(i, result)

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= MAX_IN_FLIGHT:
            stats.dropped += 1  # the server is hopelessly behind; do not grow without bound
            continue
        task = asyncio.create_task(one(i, scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        if progress is not None and i % 100 == 0:
            progress(i)
    if in_flight:
        await asyncio.wait(in_flight, timeout=30)
    if progress is not None:
        progress(total)
    return stats


async def closed_loop(
    pool: Pool,
    make: Callable[[int], bytes],
    *,
    clients: int,
    duration: float,
    on_result: Callable[[int, Result], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunStats:
    """`clients` loops sending back to back for `duration` seconds: the saturation rate."""
    stats = RunStats()
    end = time.perf_counter() + duration
    counter = iter(range(10**9))

    async def loop() -> None:
        while time.perf_counter() < end:
            i = next(counter)
            raw = make(i)
            sent = time.perf_counter()
            try:
                status, body = await pool.request(raw)
            except Exception:
                stats.errors += 1
                continue
            result = Result(sent, sent, time.perf_counter(), status, body)
            stats.results.append(result)
            if on_result is not None:
                on_result(i, result)
            if progress is not None and i % 100 == 0:
                progress(i)

    await asyncio.gather(*(loop() for _ in range(clients)))
    return stats


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
