"""Live fan-out of the event log to websocket clients of this API process.

The event table is the source; a Redis pub/sub ping only says "there is something new".
One pump per process reads new rows once and encodes each event's websocket frame once.
A client whose replay is done and whose server offers a frame wire (`console/wire.py`, under
`eldercare serve`) gets each batch of frames it wants in one write of those same bytes; any
other client has them put on its bounded queue for its sender. A client that does not keep
up — more than WS_CLIENT_QUEUE frames waiting, in its queue or (by their mean size) written
but not yet received — is cut off; it reconnects with `since=` and misses nothing. The
pump also polls, so a lost ping (a Redis restart) only delays delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlmodel import Session

from dispatch.console.wire import FrameWire, encode_text
from dispatch.core import jsontext
from dispatch.core.auth import Principal, Role
from dispatch.core.config import get_settings
from dispatch.core.db import new_session
from dispatch.core.events import (
    EVENTS_CHANNEL,
    Event,
    announce_with,
    last_seq,
    message,
    publish_ping,
    stop_announcing_with,
)
from dispatch.core.redis import redis_url

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
FETCH_LIMIT = 2000
CLOSE_TOO_SLOW = 1013  # "try again later": the client fell behind its bound


@dataclass(frozen=True)
class Frame:
    seq: int
    elder_id: int | None
    provider_id: int | None
    text: str
    data: bytes  # `text` as one websocket frame, the same bytes for every client


@dataclass(eq=False)
class Client:
    """One websocket connection: its scope and its bounded outgoing queue."""

    principal: Principal
    elder_ids: frozenset[int] = frozenset()
    # `?elder_id=`: only this elder's events (a family page following one relative).
    only_elder: int | None = None
    queue: asyncio.Queue[Frame | None] = field(
        default_factory=lambda: asyncio.Queue(get_settings().ws_client_queue)
    )
    dropped: bool = False
    # Set by the endpoint: hangs up even while a send is blocked on a client that stopped reading.
    hang_up: Callable[[], object] | None = None
    # Set once the replay is done, where the server offers one: frames are written straight to it.
    wire: FrameWire | None = None
    # On the wire: the last seq written (the replay may have sent what the pump still holds).
    sent_seq: int = 0
    _wrote_bytes: int = 0
    _wrote_frames: int = 0
    _unchecked: int = 0  # bytes written since the kernel's send queue was last looked at

    def scope(self) -> tuple[object, ...]:
        """Clients of the same scope want the same frames (the pump filters once per scope)."""
        role = self.principal.role
        if role == Role.PROVIDER:
            return (role, self.principal.provider_id, self.only_elder)
        if role == Role.FAMILY:
            return (role, self.elder_ids, self.only_elder)
        return ("staff", self.only_elder)

    def wants(self, frame: Frame) -> bool:
        if self.only_elder is not None and frame.elder_id != self.only_elder:
            return False
        role = self.principal.role
        if role == Role.PROVIDER:
            return frame.provider_id is not None and frame.provider_id == self.principal.provider_id
        if role == Role.FAMILY:
            return frame.elder_id in self.elder_ids
        return True

    def deliver(self, frames: list[Frame], data: bytes | None = None) -> None:
        """Frames this client wants, in order: one write on its wire, else onto its queue.
        `data`: the frames' bytes joined, if the caller has them (shared by a whole scope)."""
        if self.dropped or not frames:
            return
        if self.wire is None:
            for frame in frames:
                self.offer(frame)
            return
        if frames[0].seq <= self.sent_seq:
            frames, data = [frame for frame in frames if frame.seq > self.sent_seq], None
        if frames:
            self._write(frames, data)

    def offer(self, frame: Frame) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.cut_off()  # too slow: rather than let it hold memory or stall the others

    def go_direct(self, wire: FrameWire, sent_seq: int, backlog: list[Frame]) -> None:
        """From now on frames after `sent_seq` go straight to `wire`, after the `backlog` the
        queue held (frames after `sent_seq`, in order)."""
        self.wire = wire
        self.sent_seq = sent_seq
        if backlog:
            self._write(backlog)

    def _write(self, frames: list[Frame], data: bytes | None = None) -> None:
        assert self.wire is not None
        if data is None:
            data = joined(frames)
        if not self.wire.write(data):
            self.close()  # the connection is closing: the sender ends, the endpoint cleans up
            return
        self.sent_seq = frames[-1].seq
        self._wrote_bytes += len(data)
        self._wrote_frames += len(frames)
        self._unchecked += len(data)
        # The bound is in frames, as for the queue: bytes unread over the mean frame size. The
        # kernel's queue is looked at (a system call) once an eighth of the bound was written
        # since the last look, or at once when the transport holds bytes in user space (the
        # kernel's buffer is full): a console is cut off within 1/8 past its bound.
        maxsize = self.queue.maxsize
        if (
            self._unchecked * 8 * self._wrote_frames < maxsize * self._wrote_bytes
            and not self.wire.buffered()
        ):
            return
        self._unchecked = 0
        if self.wire.unread() * self._wrote_frames > maxsize * self._wrote_bytes:
            self.cut_off()

    def cut_off(self) -> None:
        """Hang up on a client that fell more than its bound behind (it resumes with since=)."""
        self.dropped = True
        if self.wire is not None:
            self.wire.close(CLOSE_TOO_SLOW, "too slow: reconnect with since=")
        self.close()
        if self.hang_up is not None:
            self.hang_up()

    def close(self) -> None:
        """Tell the sender to hang up (None jumps the queue if it is full)."""
        with contextlib.suppress(asyncio.QueueEmpty):
            if self.queue.full():
                self.queue.get_nowait()
        self.queue.put_nowait(None)


def joined(frames: list[Frame]) -> bytes:
    return frames[0].data if len(frames) == 1 else b"".join(f.data for f in frames)


def to_frame(event: Event) -> Frame:
    assert event.seq is not None
    text = event.to_json()
    return Frame(event.seq, event.elder_id, event.provider_id, text, encode_text(text))


_EVENTS = Event.__table__  # type: ignore[attr-defined]
_FRAME_ROWS = select(
    _EVENTS.c.seq,
    _EVENTS.c.type,
    _EVENTS.c.request_id,
    _EVENTS.c.elder_id,
    _EVENTS.c.provider_id,
    _EVENTS.c.status,
    _EVENTS.c.at,
    _EVENTS.c.data,
)


def frames_after(session: Session, since: int, *, limit: int = FETCH_LIMIT) -> list[Frame]:
    """The frames of the events after `since`, read as plain rows (the same text as to_frame),
    not as ORM objects: they are read once per pump run."""
    stmt = _FRAME_ROWS.where(_EVENTS.c.seq > since).order_by(_EVENTS.c.seq).limit(limit)
    frames = []
    for seq, type_, request_id, elder_id, provider_id, status, at, data in session.execute(stmt):
        text = jsontext.dumps(message(seq, type_, request_id, status, at, data))
        frames.append(Frame(seq, elder_id, provider_id, text, encode_text(text)))
    return frames


class EventHub:
    def __init__(self, fetch: Callable[[int], list[Frame]] | None = None) -> None:
        self.clients: set[Client] = set()
        self.last_seq = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._fetch = fetch or _fetch_frames
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._to_announce = 0  # the last seq this process committed and the others not yet told of
        self._announce_wake = asyncio.Event()

    async def start(self) -> None:
        self.last_seq = await asyncio.to_thread(_current_seq)
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._pump()),
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._announcer()),
        ]
        announce_with(self.committed)

    def committed(self, seq: int) -> None:
        """This process committed events up to `seq` (from any thread): wake the pump now,
        and tell the other API instances from the loop (events.announce_with)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            publish_ping(seq)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._note_committed(seq)
        else:
            loop.call_soon_threadsafe(self._note_committed, seq)

    def _note_committed(self, seq: int) -> None:
        self._to_announce = max(self._to_announce, seq)
        self.poke()
        self._announce_wake.set()

    async def _announcer(self) -> None:
        """One PUBLISH for all the commits that arrived while the last one was sent."""
        conn = aioredis.Redis.from_url(redis_url())
        try:
            while not self._closing:
                await self._announce_wake.wait()
                self._announce_wake.clear()
                seq, self._to_announce = self._to_announce, 0
                if seq:
                    try:
                        await conn.publish(EVENTS_CHANNEL, str(seq))
                    except Exception:  # the others also poll the table: a lost ping only delays them
                        log.warning("event ping failed for seq %s", seq, exc_info=True)
        finally:
            await conn.aclose()

    async def stop(self) -> None:
        """Stop within a bounded time, whatever the Redis client does with a cancellation."""
        self._closing = True
        stop_announcing_with(self.committed)
        # redis-py's asyncio pub/sub can swallow a cancellation that lands while it reads
        # (redis/redis-py#2028, #2551), which hung shutdown: cancel again until the tasks end.
        pending = set(self._tasks)
        for _ in range(50):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
        for task in self._tasks:
            if task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    task.result()
        for client in list(self.clients):
            client.close()

    def register(self, client: Client) -> None:
        self.clients.add(client)

    def unregister(self, client: Client) -> None:
        self.clients.discard(client)

    def poke(self) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        """Turn Redis pings into wake-ups; reconnect with a back-off when Redis goes away."""
        delay = 0.5
        conn = aioredis.Redis.from_url(redis_url())
        try:
            await self._subscribe_loop(conn, delay)
        finally:
            await conn.aclose()

    async def _subscribe_loop(self, conn: aioredis.Redis, delay: float) -> None:
        while not self._closing:
            try:
                async with conn.pubsub() as pubsub:
                    await pubsub.subscribe(EVENTS_CHANNEL)
                    delay = 0.5
                    self.poke()  # catch up on anything written while we were not listening
                    async for message in pubsub.listen():
                        if self._closing:
                            return
                        if message.get("type") == "message" and _seq_of(message) > self.last_seq:
                            self.poke()  # (a ping of events already read, our own say, is not)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event ping subscription lost; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _pump(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            try:
                await self._drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading new events failed; retrying")
                await asyncio.sleep(POLL_SECONDS)

    async def _drain(self) -> None:
        while True:
            frames = await asyncio.to_thread(self._fetch, self.last_seq)
            if not frames:
                return
            self.last_seq = frames[-1].seq
            self._fan_out(frames)
            if len(frames) < FETCH_LIMIT:
                return

    def _fan_out(self, frames: list[Frame]) -> None:
        """Each scope's frames are picked, and joined into one write, once for all its clients
        (every operator console of the district wants the same bytes)."""
        scopes: dict[tuple[object, ...], tuple[list[Frame], bytes | None]] = {}
        for client in list(self.clients):
            key = client.scope()
            picked = scopes.get(key)
            if picked is None:
                wanted = [frame for frame in frames if client.wants(frame)]
                picked = scopes[key] = (wanted, joined(wanted) if wanted else None)
            client.deliver(*picked)


def _seq_of(message: dict[str, object]) -> int:
    try:
        return int(message.get("data") or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 2**63  # not ours to judge: read


def _fetch_frames(since: int) -> list[Frame]:
    with new_session(write=False) as session:
        return frames_after(session, since)


def _current_seq() -> int:
    with new_session(write=False) as session:
        return last_seq(session)
