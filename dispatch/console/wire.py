"""The console's websocket wire: each event's frame is encoded once and the same bytes are
written to every connection that wants it, straight to the connection's transport.

Through the ASGI send path uvicorn frames every message once per connection and each
connection's sender task wakes once per event: with 200 consoles that was ~17 % of the API's
CPU (bench/load.py, py-spy). `FrameProtocol` is uvicorn's websockets (sans-I/O) protocol that
also hands the app, in the scope's extensions under `WIRE`, a `FrameWire` for the connection:
write frames encoded beforehand, see how many bytes wait in user space, close. A server
without it (Starlette's test client, another ASGI server) leaves the extension out and the
endpoint takes the ordinary send path.

Raw frames are safe here because the connection negotiated no extension (per-message
deflate is off: `eldercare serve`), server frames are never masked, and every write is a
whole frame written from the event loop's one thread, so frames never interleave with the
protocol's own pings or close.
"""

from __future__ import annotations

import contextlib
import fcntl
import struct
import termios
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

WIRE = "eldercare.frame_wire"


def encode_text(text: str) -> bytes:
    """One unfragmented, unmasked text frame: what a server sends."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class FrameWire:
    """Pre-encoded frames to one websocket connection of `FrameProtocol`."""

    __slots__ = ("_fd", "_protocol")

    def __init__(self, protocol: FrameProtocol) -> None:
        self._protocol = protocol
        sock = protocol.transport.get_extra_info("socket")
        self._fd: int | None = sock.fileno() if sock is not None else None

    @property
    def open(self) -> bool:
        p = self._protocol
        return p.conn.state is State.OPEN and not p.close_sent and not p.transport.is_closing()

    def write(self, data: bytes) -> bool:
        """Write whole frames; False when the connection is closing or gone (nothing written)."""
        if not self.open:
            return False
        self._protocol.transport.write(data)
        return True

    def buffered(self) -> bool:
        """Bytes wait in user space: the kernel's send buffer is full."""
        return bool(self._protocol.transport.get_write_buffer_size())

    def unread(self) -> int:
        """Bytes written that the client has not received yet: those still in user space, and
        those in the kernel's send queue (Linux's SIOCOUTQ: unsent or unacknowledged). The
        kernel's share matters: on loopback it grows to megabytes before user space holds any."""
        waiting = self._protocol.transport.get_write_buffer_size()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                waiting += struct.unpack("i", fcntl.ioctl(self._fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        return waiting

    def close(self, code: int, reason: str = "") -> None:
        """Send the close frame after what is buffered, without waiting for the buffer to drain
        (uvicorn's ASGI close waits for that, which a client that stopped reading never lets
        happen), and end the connection: as uvicorn's own close does, the app is told it is
        disconnected and the transport closes once the peer answers or the close times out."""
        p = self._protocol
        if not self.open:
            return
        p.conn.send_close(code, reason)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        p.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if p.read_paused:
            p.read_paused = False
            p.transport.resume_reading()
        p.close_timer = p.loop.call_later(p.close_timeout, p.transport.abort)


# What FrameWire uses of uvicorn's protocol (uvicorn >= 0.52.1, pinned in pyproject.toml). A
# uvicorn without one of them gets no wire: the endpoint then sends through ASGI, as elsewhere.
_USES = ("conn", "transport", "close_sent", "queue", "read_paused", "loop", "close_timeout", "close_timer")


class FrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol, offering a `FrameWire` to the app (`eldercare serve`)."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The app's task is created but has not run yet: the scope can still be added to.
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions and all(hasattr(self, a) for a in _USES):
            scope["extensions"][WIRE] = FrameWire(self)
