"""A lean websocket client for the benchmark's 200 fan-out consoles (RFC 6455, by hand).

The `websockets` client costs ~15 µs of Python per message; 200 of them in one process took
~0.4 of a core at 60,000 messages/s and delivered each pump's burst to the last console ~20 ms
after the first, so the measuring side, not the server, set the delays measured. This client
does the real handshake (checking Sec-WebSocket-Accept), then only splits the byte stream into
frames: it counts them, times every `sample_every`-th (its JSON `at`), answers pings with a
masked pong, and records the close code. Nothing else is needed to measure delivery.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import urllib.parse
from datetime import datetime
from typing import Any

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class LeanConsole(asyncio.Protocol):
    """One console: counts frames and samples their delay into `stats` (a ConsoleStats)."""

    def __init__(self, stats: Any, sample_every: int) -> None:
        self.stats = stats
        self.sample_every = sample_every
        self.key = base64.b64encode(os.urandom(16))
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.handshaken = False
        self.close_code: int | None = None
        self.request = b""

    @classmethod
    async def connect(cls, url: str, stats: Any, sample_every: int) -> LeanConsole:
        parts = urllib.parse.urlsplit(url)
        console = cls(stats, sample_every)
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        console.request = (
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {console.key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: console, parts.hostname, parts.port)
        await asyncio.wait_for(console.opened, timeout=60)
        return console

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # (uvloop's is not asyncio's class)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buf += data
        if not self.handshaken and not self._handshake():
            return
        buf, pos, end = self.buf, 0, len(self.buf)
        stats = self.stats
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            size, head = b1 & 0x7F, 2
            if size == 126:
                if end - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif size == 127:
                if end - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if end - pos < head + size:
                break
            start, pos = pos + head, pos + head + size
            opcode = b0 & 0x0F
            if opcode == TEXT:
                stats.frames += 1
                stats.first = stats.first or now
                stats.last = now
                if stats.frames % self.sample_every == 0:
                    at = json.loads(bytes(buf[start:pos]))["at"]
                    stats.delays_ms.append((now - datetime.fromisoformat(at).timestamp()) * 1000)
            elif opcode == PING:
                self._send(PONG, bytes(buf[start:pos]))
            elif opcode == CLOSE:
                self.close_code = int.from_bytes(buf[start : start + 2], "big") if size >= 2 else 1005
                self._send(CLOSE, bytes(buf[start : start + 2]))
                assert self.transport is not None
                self.transport.close()
        del buf[:pos]

    def _handshake(self) -> bool:
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = bytes(self.buf[:head_end]).decode("latin-1")
        del self.buf[: head_end + 4]
        accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest()).decode()
        lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if " 101 " not in lines[0] + " " or headers.get("sec-websocket-accept") != accept:
            self.opened.set_exception(ConnectionError(f"handshake refused: {lines[0]}"))
            assert self.transport is not None
            self.transport.close()
            return False
        self.handshaken = True
        self.opened.set_result(None)
        return True

    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked client frame (every frame a client sends must be masked)."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(CLOSE, (1000).to_bytes(2, "big"))
            try:
                await asyncio.wait_for(self.closed, timeout=5)
            except TimeoutError:
                self.transport.close()
