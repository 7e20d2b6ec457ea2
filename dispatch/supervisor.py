"""A small process supervisor for `eldercare up` and `eldercare worker`: starts children,
prefixes their output, restarts one that dies (with a back-off and a log line saying so),
and stops all of them cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil
from rich.console import Console
from rich.table import Table
from rich.text import Text

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
# A child that ran this long is healthy again: its next failure restarts it quickly.
HEALTHY_AFTER = 60.0
STOP_TIMEOUT = 10.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_START
    restart_at: float | None = None

    @property
    def state(self) -> str:
        if self.process is not None and self.process.poll() is None:
            return "running"
        return "restarting" if self.restart_at is not None else "stopped"


class Supervisor:
    def __init__(self, children: Sequence[Child], console: Console | None = None) -> None:
        self.children = list(children)
        self.console = console or Console(stderr=True)
        self._stop = threading.Event()

    def log(self, message: str) -> None:
        self.console.print(f"[bold]supervisor[/bold] {message}", highlight=False)

    def start(self, child: Child) -> None:
        env = {**os.environ, **child.env, "PYTHONUNBUFFERED": "1"}
        child.process = subprocess.Popen(
            child.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        threading.Thread(target=self._pipe, args=(child, child.process), daemon=True).start()

    def _pipe(self, child: Child, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.console.print(Text.assemble((f"{child.name:>18}", "cyan"), " | ", line), soft_wrap=True)

    def status_table(self) -> Table:
        table = Table(title="eldercare processes", show_lines=False)
        for column in ("process", "pid", "state", "restarts"):
            table.add_column(column)
        for c in self.children:
            pid = str(c.process.pid) if c.process and c.process.poll() is None else "-"
            table.add_row(c.name, pid, c.state, str(c.restarts))
        return table

    def run(self, on_started: Callable[[], None] | None = None) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children:
                self.start(child)
            self.console.print(self.status_table())
            if on_started:
                # In a thread: the loop below must keep watching the children meanwhile.
                threading.Thread(target=on_started, daemon=True).start()
            while not self._stop.wait(0.25):
                self._check_children()
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.log(f"received {signal.Signals(signum).name}; stopping everything")
        self._stop.set()

    def _check_children(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.log(f"restarting {child.name} (restart #{child.restarts})")
                    self.start(child)
                continue
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                if now - child.started_at > HEALTHY_AFTER:
                    child.backoff = BACKOFF_START
                continue
            left = kill_group(child.process.pid)
            child.restart_at = now + child.backoff
            extra = f" (and stopped {left} process(es) it left behind)" if left else ""
            self.log(f"{child.name} exited with code {code}{extra}; restarting in {child.backoff:.0f} s")
            child.backoff = min(child.backoff * 2, BACKOFF_MAX)

    def stop_all(self) -> None:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{child.name} did not stop in {STOP_TIMEOUT:.0f} s; killing it")
                child.process.kill()
                child.process.wait()
            kill_group(child.process.pid)
            child.restart_at = None
        self.log("all processes stopped")


def kill_group(pgid: int) -> int:
    """SIGKILL what is left of a dead child's process group; returns how many were left.

    A worker killed hard leaves RQ's scheduler process (its child) running: it still holds the
    queue's scheduler lock, so the restarted worker could never start a scheduler of its own.
    Each child is a session (and group) of its own, so its group is exactly what it started.
    (RQ's work horses make groups of their own and are reaped by RQ.)"""
    try:
        left = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pgid]
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return 0
    return len(left)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def eldercare_argv(*args: str) -> list[str]:
    """How a child runs an `eldercare` sub-command with this interpreter."""
    return [sys.executable, "-m", "dispatch.cli", *args]
