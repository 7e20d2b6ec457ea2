"""What the benchmark sends: requests of every kind from elders of every township, and the
accounts that send them (an operator, and one account per provider to accept offers)."""

from __future__ import annotations

import json
import random
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from _http import build_request
from sqlalchemy import text

PROVIDER_PASSWORD = "bench-provider-password"
OPERATOR = ("bench-operator", "bench-operator-password")
# A realistic day's mix (meals and day care dominate; see bench/matching.py).
KINDS = (("meal", 0.45), ("day_care", 0.30), ("home_care", 0.17), ("visit", 0.08))


@dataclass
class Workload:
    elder_ids: list[int]
    provider_users: dict[int, str]  # provider id -> username
    host: str = ""
    operator_token: str = ""
    provider_tokens: dict[int, str] = field(default_factory=dict)
    run_id: str = ""
    rng: random.Random = field(default_factory=lambda: random.Random(20261202))

    def login_all(self, base: str) -> None:
        self.host = base.removeprefix("http://")
        self.operator_token = login(base, *OPERATOR)
        for provider_id, username in self.provider_users.items():
            self.provider_tokens[provider_id] = login(base, username, PROVIDER_PASSWORD)
        self.run_id = f"{self.rng.getrandbits(32):08x}"

    def body(self) -> dict[str, object]:
        kind = self.rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
        details: dict[str, object] = {}
        if kind == "meal":
            details = {"slot": self.rng.choice(("lunch", "dinner")), "delivery": self.rng.random() < 0.3}
        elif kind == "home_care":
            details = {"skills": [self.rng.choice(("cleaning", "bathing"))]}
        priority = "urgent" if self.rng.random() < 0.02 else "high" if self.rng.random() < 0.1 else "normal"
        return {
            "elder_id": self.rng.choice(self.elder_ids),
            "kind": kind,
            "details": details,
            "priority": priority,
            "note": "bench",
        }

    def post_request(self, i: int, phase: str) -> bytes:
        headers = {
            "Authorization": f"Bearer {self.operator_token}",
            "Idempotency-Key": f"bench-{self.run_id}-{phase.replace(' ', '-')}-{i}",
        }
        return build_request("POST", "/api/requests", self.host, self.body(), headers)

    def accept(self, offer_id: int, provider_id: int) -> bytes:
        headers = {"Authorization": f"Bearer {self.provider_tokens[provider_id]}"}
        return build_request("POST", f"/api/offers/{offer_id}/accept", self.host, None, headers)


def login(base: str, username: str, password: str) -> str:
    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{base}/api/auth/token", data=data, timeout=30) as answer:
        return str(json.loads(answer.read())["access_token"])


def prepare_district() -> Workload:
    """Accounts for every provider and the operator; capacities raised so that the benchmark
    measures the machine rather than the district's seats (the matcher still checks them)."""
    from sqlmodel import select

    from dispatch.core.auth import Role, User, hash_password
    from dispatch.core.db import session_scope
    from dispatch.elders.models import Elder
    from services.models import Provider

    provider_hash = hash_password(PROVIDER_PASSWORD)
    with session_scope() as session:
        providers = list(session.exec(select(Provider)))
        existing = {u.username for u in session.exec(select(User))}
        users: dict[int, str] = {}
        for p in providers:
            assert p.id is not None
            name = f"bench-provider-{p.id}"
            users[p.id] = name
            if name not in existing:
                session.add(
                    User(username=name, password_hash=provider_hash, role=Role.PROVIDER, provider_id=p.id)
                )
        if OPERATOR[0] not in existing:
            session.add(
                User(username=OPERATOR[0], password_hash=hash_password(OPERATOR[1]), role=Role.OPERATOR)
            )
        session.execute(
            text("UPDATE provider SET capacity = 100000, open_time = '00:00', close_time = '24:00'")
        )
        session.execute(text("UPDATE caregiver SET shift_start = NULL, shift_end = NULL"))
        elder_ids = [e for e in session.exec(select(Elder.id)) if e is not None]
    return Workload(elder_ids=elder_ids, provider_users=users)
