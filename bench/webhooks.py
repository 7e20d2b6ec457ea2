"""How fast the Twilio webhooks answer (Twilio gives up after 15 s; the goal is well under 1 s).

Runs the API in-process (ASGI, no network) on a fresh SQLite database and the embedded Redis,
and posts signed webhooks as Twilio would: calls from known elders (greeting + menu), a key
press each (files an IVR request: intake, event, outbox), SMS answers from a provider
accepting its offers, delivery callbacks, and Twilio's retries of each (answered from the
stored row). Prints latency percentiles per webhook.

    .venv/bin/python bench/webhooks.py [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

AUTH_TOKEN = "bench-auth-token"
BASE = "https://hotline.bench.example"


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
    parser.add_argument("--calls", type=int, default=200, help="calls (and SMS, callbacks) to post")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="eldercare-bench-hotline-"))
    os.environ.update(
        VAR_DIR=str(tmp),
        DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        SECRET_KEY="bench-secret-key-0123456789-0123456789",
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PUBLIC_BASE_URL=BASE,
        HOTLINE_OPEN="00:00",
        HOTLINE_CLOSE="24:00",
        LOG_LEVEL="WARNING",
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_KIB="8192",
    )
    os.environ.pop("REDIS_URL", None)
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_FROM_NUMBER"):
        os.environ.pop(key, None)

    from fastapi.testclient import TestClient
    from twilio.request_validator import RequestValidator

    from dispatch.app import create_app
    from dispatch.core.db import migrate, session_scope
    from dispatch.core.redis import EmbeddedRedis
    from dispatch.elders.models import Elder
    from services.models import Provider
    from workers.matching import match_pending

    redis = EmbeddedRedis(tmp / "redis")
    os.environ["REDIS_URL"] = redis.start()
    try:
        migrate()
        provider_phone = "+8613600009999"
        with session_scope() as session:
            session.add(
                Provider(
                    name="压测居家养老服务社", kind="home_care", township="静海镇", lat=38.95, lon=116.97,
                    phone=provider_phone, capacity=100_000, service_radius_km=50, skills=[],
                )
            )  # fmt: skip
            for n in range(args.calls):
                session.add(
                    Elder(
                        name=f"测试老人{n}",
                        phone=f"+86139{n:08d}",
                        township="静海镇",
                        lat=38.947,
                        lon=116.974,
                    )
                )
        validator = RequestValidator(AUTH_TOKEN)
        timings: dict[str, list[float]] = {}

        with TestClient(create_app()) as client:

            def post(name: str, path: str, params: dict[str, str]) -> None:
                headers = {"X-Twilio-Signature": validator.compute_signature(BASE + path, params)}
                started = time.perf_counter()
                response = client.post(path, data=params, headers=headers)
                timings.setdefault(name, []).append(time.perf_counter() - started)
                assert response.status_code == 200, response.text

            def each(name: str, make: Callable[[int], tuple[str, dict[str, str]]]) -> None:
                for n in range(args.calls):
                    post(name, *make(n))

            each(
                "voice (menu)",
                lambda n: ("/hotline/twilio/voice", {"CallSid": f"CA{n:032d}", "From": f"+86139{n:08d}"}),
            )
            each(
                "voice retry",
                lambda n: ("/hotline/twilio/voice", {"CallSid": f"CA{n:032d}", "From": f"+86139{n:08d}"}),
            )
            each(
                "gather 2 (files request)",
                lambda n: ("/hotline/twilio/gather?attempt=0", {"CallSid": f"CA{n:032d}", "From": f"+86139{n:08d}", "Digits": "2"}),
            )  # fmt: skip
            each(
                "gather retry",
                lambda n: ("/hotline/twilio/gather?attempt=0", {"CallSid": f"CA{n:032d}", "From": f"+86139{n:08d}", "Digits": "2"}),
            )  # fmt: skip
            match_pending()  # offers for every request (outside the timed webhooks)
            each(
                "sms 1 (accepts offer)",
                lambda n: (
                    "/hotline/twilio/sms",
                    {"MessageSid": f"SM{n:032d}", "From": provider_phone, "Body": "1"},
                ),
            )
            each(
                "status callback",
                lambda n: (
                    "/hotline/twilio/status",
                    {"MessageSid": f"SX{n:032d}", "MessageStatus": "delivered"},
                ),
            )
        print(f"Twilio webhooks, in-process ASGI, SQLite + embedded Redis, {os.cpu_count()} CPUs")
        for name, samples in timings.items():
            print(f"  {name:26s} {_percentiles(samples)}")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
