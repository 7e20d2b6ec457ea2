"""The frame wire (dispatch/console/wire.py) under a real uvicorn: frames encoded once reach
every console in seq order across the switch from replay to the wire, consoles of other
scopes get none of them, and a console that stops reading is closed 1013 at its bound
while the others keep receiving."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import col, select
from websockets.sync.client import connect

from dispatch.console.hub import EventHub
from dispatch.console.wire import encode_text
from dispatch.core.auth import Role
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.events import Event, emit
from dispatch.core.redis import free_port
from tests.helpers import ELDER, Api, make_user, never_reading_websocket, wait_for


class LiveApi:
    """The app under uvicorn with `eldercare serve`'s websocket settings, in a thread."""

    def __init__(self) -> None:
        from dispatch.app import create_app

        self.app = create_app()
        self.port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            ws="dispatch.console.wire:FrameProtocol",
            ws_per_message_deflate=False,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub(self) -> EventHub:
        return self.app.state.hub  # type: ignore[no-any-return]


@pytest.fixture
def live(env: dict[str, str]) -> Iterator[LiveApi]:
    server = LiveApi()
    server.thread.start()
    wait_for(lambda: server.server.started, timeout=20, what="uvicorn to start")
    try:
        yield server
    finally:
        server.server.should_exit = True
        server.thread.join(20)


def _emit(count: int, *, elder_id: int | None = None, pad: int = 0) -> None:
    """`count` events in one transaction (their ping goes out after the commit)."""
    with session_scope() as session:
        for n in range(count):
            emit(session, "test.tick", elder_id=elder_id, data={"n": n, "pad": "x" * pad})


def _emit_batches(batches: int, size: int) -> None:
    for _ in range(batches):
        _emit(size)


def _event_log(elder_id: int | None = None) -> list[int]:
    with session_scope(write=False) as s:
        stmt = select(Event.seq).order_by(col(Event.seq))
        if elder_id is not None:
            stmt = stmt.where(Event.elder_id == elder_id)
        return [seq for seq in s.exec(stmt).all() if seq is not None]


def _read(ws: Any, seqs: list[int], until: int) -> None:
    while len(seqs) < until:
        seqs.append(json.loads(ws.recv(timeout=20))["seq"])


def test_encoded_frame_is_what_websockets_itself_sends() -> None:
    from websockets.frames import Frame, Opcode

    for text in ("{}", "长者" * 40, "x" * 70_000):  # the 1-, 2- and 8-byte length forms
        data = encode_text(text)
        assert data[0] == 0x81  # FIN, text, no RSV bit (nothing compressed), and unmasked:
        assert data[1] & 0x80 == 0
        assert data == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
        assert data.endswith(text.encode())


def test_consoles_get_every_frame_in_order_across_replay_and_wire(live: LiveApi) -> None:
    with httpx.Client(base_url=live.base) as http:
        token = Api(http).login(make_user(Role.OPERATOR))
    _emit(300)  # stored before the console connects: the replay
    writer = threading.Thread(target=_emit_batches, args=(30, 20))  # 600 live ones
    url = live.base.replace("http://", "ws://") + f"/ws/events?token={token}&since=0"
    seqs: list[int] = []
    with connect(url, open_timeout=10) as ws:
        writer.start()  # events are committed while the replay runs and after it
        wait_for(lambda: any(c.wire is not None for c in live.hub.clients), what="the console on the wire")
        writer.join()
        _read(ws, seqs, 900)
        on_wire = [c for c in live.hub.clients if c.wire is not None]
    assert seqs == _event_log(), "a gap, a duplicate or a reorder"
    assert len(on_wire) == 1 and not on_wire[0].dropped


def test_what_the_replay_sent_is_not_sent_again_when_the_pump_catches_up(live: LiveApi) -> None:
    with httpx.Client(base_url=live.base) as http:
        token = Api(http).login(make_user(Role.OPERATOR))
    # Hold the pump back: the replay reads from the table what the pump has not delivered yet.
    gate, fetch = threading.Event(), live.hub._fetch
    live.hub._fetch = lambda since: (gate.wait(20), fetch(since))[1]  # type: ignore[method-assign]
    _emit(50)
    url = live.base.replace("http://", "ws://") + f"/ws/events?token={token}&since=0"
    seqs: list[int] = []
    with connect(url, open_timeout=10) as ws:
        _read(ws, seqs, 50)  # all 50 by the replay
        wait_for(lambda: any(c.wire is not None for c in live.hub.clients), what="the console on the wire")
        gate.set()  # the pump now delivers the same 50, then 10 new ones
        _emit(10)
        _read(ws, seqs, 60)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
    assert seqs == _event_log(), "a frame sent twice or out of order"


def test_a_console_gets_only_frames_of_its_scope_on_the_wire(live: LiveApi) -> None:
    with httpx.Client(base_url=live.base) as http:
        api = Api(http)
        w = api.world()
        family = make_user(Role.FAMILY)
        mine = w["elder"]["id"]
        api.ok("POST", f"/api/elders/{mine}/family", w["operator"], 201, json={"username": family})
        stranger = api.ok(
            "POST", "/api/elders", w["operator"], 201, json={**ELDER, "phone": "+8613800000009"}
        )
        token = api.login(family)
    since = _event_log()[-1] if _event_log() else 0
    url = live.base.replace("http://", "ws://") + f"/ws/events?token={token}&since={since}"
    seqs: list[int] = []
    with connect(url, open_timeout=10) as ws:
        wait_for(lambda: any(c.wire is not None for c in live.hub.clients), what="the console on the wire")
        for _ in range(5):
            _emit(10, elder_id=stranger["id"])
            _emit(10, elder_id=mine)
        _read(ws, seqs, 50)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)  # and nothing else: the stranger's 50 never came
    assert seqs == [seq for seq in _event_log(mine) if seq > since]


def test_a_console_that_stops_reading_is_closed_1013_and_the_others_keep_up(
    live: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WS_CLIENT_QUEUE", "20")
    get_settings.cache_clear()  # clients made from now on have a bound of 20 frames
    with httpx.Client(base_url=live.base) as http:
        token = Api(http).login(make_user(Role.OPERATOR))
    stalled_socket = never_reading_websocket(live.base, token)
    stalled = wait_for(
        lambda: next((c for c in live.hub.clients if c.wire is not None), None),
        what="the stalled one on the wire",
    )
    assert stalled is not None
    url = live.base.replace("http://", "ws://") + f"/ws/events?token={token}&since=0"
    seqs: list[int] = []
    with connect(url, open_timeout=10) as ws:
        wait_for(lambda: sum(c.wire is not None for c in live.hub.clients) == 2, what="both on the wire")
        for _ in range(200):  # batches of 25 frames of ~2 KB, until the kernel's buffers are full too
            _emit(25, pad=2000)
            _read(ws, seqs, len(seqs) + 25)
            if stalled.dropped:
                break
        assert stalled.dropped, "the console that never reads was never cut off"
        # Read what reached the stalled console: its frames, then the close frame.
        stalled_socket.settimeout(5)
        received = b""
        reason = b"too slow: reconnect with since="
        closing = bytes([0x88, 2 + len(reason)]) + (1013).to_bytes(2, "big") + reason
        while closing not in received:
            chunk = stalled_socket.recv(65536)
            assert chunk, "the connection ended without the close frame"
            received += chunk
        stalled_socket.close()
        for _ in range(5):  # the reading console is unaffected
            _emit(25, pad=2000)
            _read(ws, seqs, len(seqs) + 25)
    assert seqs == _event_log(), "the reading console missed or reordered frames"
    assert len(received) < 1_000_000, "the server kept writing to a console past its bound"
    wait_for(lambda: stalled not in live.hub.clients, what="the stalled console unregistered")
