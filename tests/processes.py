"""Real processes for end-to-end tests: the API under uvicorn, RQ workers, the cron scheduler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from dispatch.core.redis import free_port
from dispatch.supervisor import kill_group
from tests.helpers import wait_for


class Platform:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "dispatch.cli", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped with whatever it started (RQ's scheduler child)
        )
        self.processes[name] = process
        return process

    def start_api(self, name: str = "api", port: int | None = None) -> None:
        port = port or self.port
        self.start(name, "serve", "--no-migrate", "--port", str(port))
        wait_for(lambda: _ready(f"http://127.0.0.1:{port}"), timeout=30, what=f"{name} to answer /readyz")

    def start_worker(self, queue: str, name: str | None = None) -> None:
        self.start(name or f"worker-{queue}", "worker", "--queue", queue)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        kill_group(process.pid)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.log_dir.glob("*.log")
        )


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class EventListener:
    """A real websocket client in a thread, collecting every frame it receives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with connect(self.url, open_timeout=10) as ws:
            while not self._stop.is_set():
                try:
                    message = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                self.frames.append(json.loads(message))

    def start(self) -> EventListener:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def of(self, request_id: int) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["request_id"] == request_id]


@contextmanager
def running_platform(env: dict[str, str], log_dir: Path) -> Iterator[Platform]:
    platform = Platform(env, log_dir)
    try:
        yield platform
    finally:
        platform.stop_all()
