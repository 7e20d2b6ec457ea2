"""R5: 200 requests posted 4 times each, concurrently, with the same Idempotency-Key; then 50
keys reused with another body. Exactly 200 rows; every replay identical to the first answer;
50 refusals (422). A 409 (the key's first request is still being processed) is retried, as a
client should."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from dispatch.core.db import session_scope
from dispatch.orders.models import ServiceRequest
from tests.reliability.harness import Http, build_world, cluster

pytestmark = [pytest.mark.fault, pytest.mark.e2e]

KEYS, COPIES, REUSED = 200, 4, 50


def test_r5_concurrent_replays_and_reused_keys(fault_env: dict[str, str], logs: Path) -> None:
    with cluster(fault_env, logs) as c:
        base = c.api()
        world = build_world(base, elders=10, providers=0, capacity=1)
        http = Http(base)
        token = http.token(world.operator)

        def post(key: str, body: dict[str, object]) -> tuple[int, str]:
            with httpx.Client(timeout=30) as client:
                for _ in range(50):
                    r = client.post(f"{base}/api/requests", json=body,
                                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})  # fmt: skip
                    if r.status_code != 409:
                        return r.status_code, r.text
                    time.sleep(0.1)
            raise AssertionError(f"{key} stayed 409")

        bodies = {
            f"k{i}": {"elder_id": world.elders[i % 10], "kind": "meal", "note": f"n{i}"} for i in range(KEYS)
        }
        jobs = [(key, body) for key, body in bodies.items() for _ in range(COPIES)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda kb: (kb[0], *post(*kb)), jobs))
            reused = list(
                pool.map(lambda key: post(key, {**bodies[key], "kind": "visit"}), list(bodies)[:REUSED])
            )
    by_key: dict[str, list[tuple[int, str]]] = {}
    for key, status, text in answers:
        by_key.setdefault(key, []).append((status, text))
    for key, results in by_key.items():
        statuses = sorted(s for s, _ in results)
        assert statuses == [200] * (COPIES - 1) + [202], (key, statuses)
        first = json.loads(next(t for s, t in results if s == 202))
        assert all(json.loads(t) == first for _, t in results), (
            f"{key}: a replay differs from the first answer"
        )
    assert [s for s, _ in reused] == [422] * REUSED
    assert all("different request body" in t for _, t in reused)
    with session_scope(write=False) as s:
        assert s.exec(select(func.count()).select_from(ServiceRequest)).one() == KEYS
