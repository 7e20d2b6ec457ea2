"""How fast the provider's phone, the family page and the visit review answer.

Runs the API in-process (ASGI, no network) on a fresh SQLite database and the embedded Redis.
One home-care provider gets `--jobs` jobs dispatched by hand; then, timed: the provider's whole
day (GET /api/field/today, with every job open), "on the way", check-in and check-out (half of
them flagged too short), the operators' flagged list and its CSV export, corrections, and the
family page's start (an elder with 20 requests). Prints latency percentiles per call.

    .venv/bin/python bench/field.py [--jobs 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"n={len(ordered):4d}  p50 {pick(0.5):6.1f} ms  p90 {pick(0.9):6.1f} ms  "
        f"p99 {pick(0.99):6.1f} ms  max {ordered[-1] * 1000:6.1f} ms  mean {statistics.mean(ordered) * 1000:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs dispatched to the provider")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="eldercare-bench-field-"))
    os.environ.update(
        VAR_DIR=str(tmp),
        DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        SECRET_KEY="bench-secret-key-0123456789-0123456789",
        LOG_LEVEL="WARNING",
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_KIB="8192",
        # Every other visit lasts "too short": the check-out of a job is timed right after its check-in.
        EVV_MIN_MINUTES_HOME_CARE="30",
    )
    os.environ.pop("REDIS_URL", None)

    from fastapi.testclient import TestClient

    from dispatch.accounts import service as account_service
    from dispatch.accounts.schemas import UserCreate
    from dispatch.app import create_app
    from dispatch.core.auth import Role
    from dispatch.core.db import migrate, session_scope
    from dispatch.core.redis import EmbeddedRedis
    from dispatch.elders.models import Consent, Elder, FamilyLink
    from services.models import Caregiver, Provider

    redis = EmbeddedRedis(tmp / "redis")
    os.environ["REDIS_URL"] = redis.start()
    try:
        migrate()
        with session_scope() as session:
            provider = Provider(
                name="压测居家养老服务社", kind="home_care", township="静海镇", lat=38.95, lon=116.97,
                phone="+8613600009999", capacity=100_000, service_radius_km=50, skills=["cleaning"],
            )  # fmt: skip
            session.add(provider)
            session.flush()
            session.add(Caregiver(provider_id=provider.id or 0, name="王芳", skills=["cleaning"]))
            elders = [
                Elder(
                    name=f"测试老人{n}",
                    phone=f"+86139{n:08d}",
                    township="静海镇",
                    lat=38.947,
                    lon=116.974,
                    notes="糖尿病",
                )  # fmt: skip
                for n in range(args.jobs)
            ]
            session.add_all(elders)
            session.flush()
            for role, name, extra in (
                (Role.OPERATOR, "operator", {}),
                (Role.PROVIDER, "provider", {"provider_id": provider.id}),
                (Role.FAMILY, "family", {"phone": "+8613900000088"}),
            ):
                user_in = UserCreate(username=name, password="password-123", role=role, **extra)
                user = account_service.create_user(session=session, user_in=user_in)
            session.add(
                FamilyLink(elder_id=elders[0].id or 0, user_id=user.id or 0, consent=Consent.STATUS_AND_NOTES)
            )
            provider_id, elder_ids = provider.id, [e.id for e in elders]
        timings: dict[str, list[float]] = {}

        with TestClient(create_app()) as client:
            tokens = {
                u: client.post("/api/auth/token", data={"username": u, "password": "password-123"}).json()[
                    "access_token"
                ]
                for u in ("operator", "provider", "family")
            }

            def call(name: str | None, user: str, method: str, path: str, body: Any = None) -> Any:
                started = time.perf_counter()
                r = client.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {tokens[user]}"}
                )
                if name:
                    timings.setdefault(name, []).append(time.perf_counter() - started)
                assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
                return r.json() if "json" in r.headers.get("content-type", "") else r.text

            def repeat(name: str, times: int, work: Callable[[], Any]) -> None:
                for _ in range(times):
                    work()

            jobs = []
            for n, elder_id in enumerate(elder_ids):
                # The first elder has 20 requests (the family page's start reads them all).
                for _ in range(20 if n == 0 else 1):
                    rid = call(
                        None, "operator", "POST", "/api/requests", {"elder_id": elder_id, "kind": "home_care"}
                    )["id"]
                    call(
                        None, "operator", "POST", f"/api/requests/{rid}/assign", {"provider_id": provider_id}
                    )
                    jobs.append(rid)
            repeat(
                "field/today (all open)",
                50,
                lambda: call("field/today (all open)", "provider", "GET", "/api/field/today"),
            )
            repeat("field/offers", 50, lambda: call("field/offers", "provider", "GET", "/api/field/offers"))
            here = {"lat": 38.947, "lon": 116.974}
            for n, rid in enumerate(jobs):
                call("on-the-way", "provider", "POST", f"/api/requests/{rid}/on-the-way", {"eta_minutes": 10})
                call("check-in", "provider", "POST", f"/api/requests/{rid}/check-in", here)
                away = {"lat": 38.957, "lon": 116.974} if n % 2 else here
                call(
                    "check-out",
                    "provider",
                    "POST",
                    f"/api/requests/{rid}/check-out",
                    {**away, "summary": "打扫"},
                )
            repeat(
                "visits?review=open",
                50,
                lambda: call("visits?review=open", "operator", "GET", "/api/visits?review=open&limit=100"),
            )
            repeat(
                "visits/export.csv (all)",
                10,
                lambda: call("visits/export.csv (all)", "operator", "GET", "/api/visits/export.csv"),
            )
            flagged = call(None, "operator", "GET", "/api/visits?review=open&limit=500")
            for v in flagged[: len(flagged) // 2]:
                call("correction", "operator", "POST", f"/api/visits/{v['id']}/corrections",
                     {"decision": "approve", "reason": "电话核实无误"})  # fmt: skip
            repeat(
                "family/overview",
                50,
                lambda: call("family/overview", "family", "GET", "/api/family/overview"),
            )
        print(f"Provider phone, visit review, family page: in-process ASGI, SQLite + embedded Redis, "
              f"{len(jobs)} jobs, {os.cpu_count()} CPUs")  # fmt: skip
        for name, samples in timings.items():
            print(f"  {name:26s} {_percentiles(samples)}")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
