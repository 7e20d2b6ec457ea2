"""Over a real uvicorn process: what an answer says is done is already committed, so the phone
and the console can read their own write at once (a correction, a check-in, then the list).
FastAPI ends a `yield` dependency after the response unless told otherwise; the request
session (dispatch/core/db.py) commits before answering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Api
from tests.processes import Platform, running_platform
from tests.visits.world import HOME, World, build

pytestmark = pytest.mark.e2e
ROUNDS = 40


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Platform, World]]:
    with running_platform(env, tmp_path) as platform:
        platform.start_api()
        yield platform, build(Api(httpx.Client(base_url=platform.base, timeout=20)))


def test_each_write_is_readable_as_soon_as_it_is_answered(served: tuple[Platform, World]) -> None:
    _, w = served
    stale = []
    for n in range(ROUNDS):
        job = w.job()
        visit = w.api.ok("POST", f"/api/requests/{job}/check-in", w.provider_user, json=HOME)
        jobs = {j["request_id"]: j for j in w.api.ok("GET", "/api/field/today", w.provider_user)["jobs"]}
        if jobs[job]["status"] != "in_service":
            stale.append(f"round {n}: check-in answered, job still {jobs[job]['status']}")
        w.api.ok("POST", f"/api/requests/{job}/check-out", w.provider_user, json=HOME)
        decision = "approve" if n % 2 else "reject"
        w.api.ok("POST", f"/api/visits/{visit['id']}/corrections", w.operator, 201,
                 json={"decision": decision, "reason": "电话核实"})  # fmt: skip
        review = w.api.ok("GET", f"/api/visits/{visit['id']}", w.operator)["review"]
        if review != ("approved" if n % 2 else "rejected"):
            stale.append(f"round {n}: correction answered, visit still {review}")
    assert stale == []
