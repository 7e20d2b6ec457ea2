"""W1: two API processes, three consoles, 1,000 events, each console disconnected 10 times
(alternating between the two APIs): every console ends with exactly the event log, no gap, no
duplicate, no reorder. W2: a console that never reads is cut off at its bound while the others
keep receiving, and the API's memory stays flat."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import psutil
import pytest
from sqlmodel import col, select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from dispatch.core.db import session_scope
from dispatch.core.events import Event
from tests.helpers import never_reading_websocket, wait_for
from tests.reliability.harness import Http, Record, build_world, cluster, post_requests

pytestmark = [pytest.mark.fault, pytest.mark.e2e]


def _event_log() -> list[int]:
    with session_scope(write=False) as s:
        return [seq for seq in s.exec(select(Event.seq).order_by(col(Event.seq))).all() if seq is not None]


class Console(threading.Thread):
    """Reads events, hangs up at random moments, resumes from the last seq on the other API."""

    def __init__(self, bases: list[str], token: str, disconnects: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.bases, self.token, self.disconnects = bases, token, disconnects
        self.rng = random.Random(seed)
        self.seqs: list[int] = []
        self.reconnects = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            base = self.bases[self.reconnects % len(self.bases)].replace("http://", "ws://")
            since = self.seqs[-1] if self.seqs else 0
            budget = self.rng.randint(20, 120) if self.reconnects < self.disconnects else 10**9
            try:
                with connect(f"{base}/ws/events?token={self.token}&since={since}", open_timeout=10) as ws:
                    while budget > 0 and not self.done.is_set():
                        try:
                            frame = json.loads(ws.recv(timeout=0.5))
                        except TimeoutError:
                            continue
                        self.seqs.append(frame["seq"])
                        budget -= 1
                    if self.reconnects % 2:
                        ws.socket.close()  # an abrupt drop, no closing handshake
            except (ConnectionClosed, OSError):
                pass
            self.reconnects += 1


def test_w1_consoles_that_drop_and_resume_miss_nothing(fault_env: dict[str, str], logs: Path) -> None:
    with cluster(fault_env, logs) as c:
        bases = [c.api("api-a"), c.api("api-b")]
        world = build_world(bases[0], elders=10, providers=0, capacity=1)
        http = Http(bases)
        token = http.token(world.operator)
        consoles = [Console(bases, token, disconnects=10, seed=n) for n in range(3)]
        for console in consoles:
            console.start()
        # 500 visits with no provider at all: created + escalated = 1,000 events, from both APIs.
        post_requests(http, world, Record(), count=500, clients=4, kinds=["day_care"])
        from tests.helpers import drain_jobs

        wait_for(
            lambda: (drain_jobs() or True) and len(_event_log()) >= 1000, timeout=120, what="1,000 events"
        )
        log = _event_log()
        try:
            wait_for(
                lambda: all(len(x.seqs) >= len(log) for x in consoles),
                timeout=120,
                what="consoles to catch up",
            )
        finally:
            for console in consoles:
                console.done.set()
    for console in consoles:
        assert console.reconnects >= 10
        assert console.seqs == log, "a console's events differ from the log (gap, duplicate or reorder)"


def test_w2_a_console_that_never_reads_is_cut_off_and_stalls_nobody(
    fault_env: dict[str, str], logs: Path
) -> None:
    with cluster({**fault_env, "WS_CLIENT_QUEUE": "200"}, logs) as c:
        base = c.api()
        world = build_world(base, elders=10, providers=0, capacity=1)
        http = Http(base)
        token = http.token(world.operator)
        api = psutil.Process(c.procs["api"].process.pid)  # type: ignore[union-attr]
        stalled = never_reading_websocket(base, token)
        reader = Console([base], token, disconnects=0, seed=1)
        reader.start()
        rss_before = api.memory_info().rss
        post_requests(http, world, Record(), count=600, clients=4, kinds=["day_care"])
        from tests.helpers import drain_jobs

        wait_for(
            lambda: (drain_jobs() or True) and len(_event_log()) >= 1200, timeout=120, what="1,200 events"
        )
        log = _event_log()
        wait_for(
            lambda: len(reader.seqs) >= len(log), timeout=60, what="the reading console to get everything"
        )
        reader.done.set()
        rss_after = api.memory_info().rss
        # Drain what the kernel buffered for the stalled console: the server must have hung up.
        stalled.setblocking(True)
        stalled.settimeout(10)
        received = b""
        try:
            while chunk := stalled.recv(65536):
                received += chunk
        except ConnectionResetError:
            received += b"<reset>"  # the server aborted the connection: also a cut
        stalled.close()
    assert reader.seqs == log
    assert b"\x88" in received[-64:] or received.endswith(b"<reset>"), "the stalled console was never cut off"
    assert len(received) < 2_000_000, "the server kept sending to a console past its bound"
    growth_mb = (rss_after - rss_before) / 2**20
    print(
        f"\nW2: {len(log)} events, API RSS growth {growth_mb:.1f} MB, stalled console got {len(received)} bytes"
    )
    assert growth_mb < 50
