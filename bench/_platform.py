"""Start the platform as it runs in production, for the benchmark: the embedded Redis (or
REDIS_URL), `eldercare serve`, one `eldercare worker` per queue and `eldercare scheduler`,
each a process of its own; and sample every process's CPU and memory while it runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from dispatch.core.memory import resident_by_kind

QUEUES = ("eldercare-match", "eldercare-notify", "eldercare-maintenance")
PROBE = Path(__file__).parent / "_probe"  # sitecustomize.py: SQLite's and malloc's memory, read in-process
REGIONS_EVERY = 60  # samples (30 s at 0.5 s) between two readings of a process's memory regions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eldercare(*args: str) -> list[str]:
    return [sys.executable, "-m", "dispatch.cli", *args]


def wait_http(url: str, timeout: float = 60) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@dataclass
class Usage:
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0
    rss_samples: list[tuple[float, float]] = field(default_factory=list)
    # (time, resident_by_kind()) of the process's largest process, every REGIONS_EVERY samples
    regions: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    pid: int | None = None  # that largest process, last seen


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    usage: Usage = field(default_factory=Usage)

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def tree(self) -> list[psutil.Process]:
        if self.popen is None or self.popen.poll() is not None:
            return []
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class Sampler(threading.Thread):
    """Peak RSS (the whole process tree: uvicorn workers, RQ work horses) and CPU seconds."""

    def __init__(self, procs: list[Proc], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.procs, self.interval = procs, interval
        self._stop_event = threading.Event()
        self._cpu: dict[tuple[str, int], float] = {}
        self._samples = 0

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        now = time.monotonic()
        read_regions = self._samples % REGIONS_EVERY == 0
        self._samples += 1
        for proc in self.procs:
            rss, largest = 0.0, None
            for p in proc.tree():
                try:
                    own = p.memory_info().rss / 2**20
                    if own > rss:  # the largest single process
                        rss, largest = own, p.pid
                    times = p.cpu_times()
                    self._cpu[(proc.name, p.pid)] = times.user + times.system
                except psutil.NoSuchProcess:
                    continue
            proc.usage.peak_rss_mb = max(proc.usage.peak_rss_mb, rss)
            proc.usage.rss_samples.append((now, rss))
            proc.usage.pid = largest or proc.usage.pid
            if read_regions and largest is not None:
                proc.usage.regions.append((now, resident_by_kind(largest)))
            proc.usage.cpu_s = sum(v for (name, _), v in self._cpu.items() if name == proc.name)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
        self.sample()


class Platform:
    """The processes of one platform instance, started in order and stopped in reverse."""

    def __init__(self, env: dict[str, str], logs: Path, *, probe: bool = False) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.logs = logs
        self.probe_dir: Path | None = None
        if probe:  # every process reads its SQLite and malloc memory into probe/<pid>.jsonl
            self.probe_dir = logs / "probe"
            self.probe_dir.mkdir(parents=True, exist_ok=True)
            path = os.pathsep.join(p for p in (str(PROBE), self.env.get("PYTHONPATH", "")) if p)
            # MALLOC_ARENA_MAX from the start, as main() sets it: the probe's thread starts
            # before main() and would otherwise get an arena of its own.
            self.env.update(
                PYTHONPATH=path, ELDERCARE_BENCH_PROBE_DIR=str(self.probe_dir), MALLOC_ARENA_MAX="1"
            )
        self.procs: list[Proc] = []
        self.sampler: Sampler | None = None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def add(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, {**self.env, **(env or {})}, self.logs / f"{name}.log")
        proc.start()
        self.procs.append(proc)
        return proc

    def start(
        self,
        *,
        api_workers: int = 1,
        worker_class: str = "simple",
        match_env: dict[str, str] | None = None,
        api_env: dict[str, str] | None = None,
    ) -> None:
        try:
            self.add(
                "api",
                eldercare("serve", "--no-migrate", "--port", str(self.port), "--workers", str(api_workers)),
                api_env,
            )
            for queue in QUEUES:
                extra = match_env if queue.endswith("match") else None
                self.add(
                    queue.removeprefix("eldercare-"),
                    eldercare("worker", "--queue", queue, "--class", worker_class),
                    extra,
                )
            self.add("scheduler", eldercare("scheduler"))
            wait_http(f"{self.base}/readyz")
        except BaseException:
            # Not ready (or interrupted): stop what was started, or its processes outlive the
            # bench and take CPU from the next run's measurements.
            self.stop()
            raise
        self.sampler = Sampler(self.procs)
        self.sampler.start()

    def usage(self) -> dict[str, Usage]:
        if self.sampler is not None:
            self.sampler.sample()
        return {p.name: p.usage for p in self.procs}

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        for proc in reversed(self.procs):
            proc.stop()

    def dead(self) -> list[str]:
        return [p.name for p in self.procs if p.popen is not None and p.popen.poll() is not None]
