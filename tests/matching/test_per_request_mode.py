"""MATCH_MODE=per_request, the naive reference bench/load.py measures the platform against:
one match job per request instead of one shared batch run, with the same guarded apply. It
must really do the work (or the benchmark's ratio means nothing) and be as safe to run twice."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from dispatch.core.auth import Role
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.jobs import JobName
from dispatch.core.outbox import OutboxJob
from tests.helpers import HOME_CARE, Api, drain_jobs, make_user
from workers.matching import match_request


@pytest.fixture(autouse=True)
def per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATCH_MODE", "per_request")
    get_settings.cache_clear()


def _jobs(name: str) -> list[OutboxJob]:
    with session_scope(write=False) as session:
        return list(session.exec(select(OutboxJob).where(col(OutboxJob.job) == name)).all())


def _post(api: Api, w: dict[str, Any]) -> dict[str, Any]:
    body = {"elder_id": w["elder"]["id"], "kind": "home_care", "details": {"skills": []}}
    return api.ok("POST", "/api/requests", w["operator"], 202, json=body)  # type: ignore[no-any-return]


def test_each_request_gets_its_own_match_job_and_is_offered(api: Api) -> None:
    w = api.world()
    posted = [_post(api, w) for _ in range(3)]
    rows = _jobs(JobName.MATCH_REQUEST)
    assert sorted(r.payload["request_id"] for r in rows) == sorted(p["id"] for p in posted)
    assert all(r.coalesce is None for r in rows)
    assert _jobs(JobName.MATCH_PENDING) == []  # no shared batch run owed
    drain_jobs()
    for p in posted:
        got = api.ok("GET", f"/api/requests/{p['id']}", w["operator"])
        assert got["status"] == "offered", got
    assert all(r.done_at is not None for r in _jobs(JobName.MATCH_REQUEST))


def test_a_second_run_of_the_same_job_changes_nothing(api: Api) -> None:
    w = api.world()
    posted = _post(api, w)
    (row,) = _jobs(JobName.MATCH_REQUEST)
    assert match_request(request_id=posted["id"], outbox_id=row.id) == "offered"
    assert match_request(request_id=posted["id"], outbox_id=row.id) == "done before"
    assert match_request(request_id=posted["id"]) == "left queued"  # not queued any more: skipped
    offers = api.ok("GET", "/api/offers", w["admin"])
    assert [o["request_id"] for o in offers] == [posted["id"]]


def test_a_decline_owes_a_job_for_that_request_and_the_next_candidate_gets_it(api: Api) -> None:
    w = api.world()
    second = api.ok(
        "POST",
        "/api/providers",
        w["manager"],
        201,
        json={**HOME_CARE, "lat": 38.951, "phone": "+8613610000009"},
    )
    second_user = make_user(Role.PROVIDER, provider_id=second["id"])
    posted = _post(api, w)
    drain_jobs()
    (first_offer,) = api.ok("GET", "/api/offers?status=pending", w["admin"])
    first_user = w["provider_user"] if first_offer["provider_id"] == w["provider"]["id"] else second_user
    api.ok("POST", f"/api/offers/{first_offer['id']}/decline", first_user, json={"reason": "busy"})
    assert [r.payload["request_id"] for r in _jobs(JobName.MATCH_REQUEST)] == [posted["id"]] * 2
    drain_jobs()
    (next_offer,) = api.ok("GET", "/api/offers?status=pending", w["admin"])
    assert next_offer["request_id"] == posted["id"]
    assert next_offer["provider_id"] != first_offer["provider_id"]
