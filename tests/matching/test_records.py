"""A provider's record as the matcher reads it (dispatch/matching/records.py): acceptance,
completion, rating and recent no-shows, from real offers, visits and feedback — and the
snapshot reads every provider's record, and the batch's history, in a fixed number of queries
whatever the batch size."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import get_engine, session_scope
from dispatch.matching import records
from dispatch.matching import service as matching_service
from dispatch.matching.scoring import PRIOR_ACCEPTANCE, PRIOR_COMPLETION, PRIOR_RATING, smoothed
from dispatch.orders.models import ServiceRequest
from tests.helpers import ELDER, Api, drain_jobs

HOME = {"lat": ELDER["lat"], "lon": ELDER["lon"]}


def _offer(api: Api, w: dict[str, Any], **body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    req = api.ok(
        "POST",
        "/api/requests",
        w["operator"],
        202,
        json={"elder_id": w["elder"]["id"], "kind": "home_care", **body},
    )
    drain_jobs()
    (offer,) = [
        o
        for o in api.ok("GET", "/api/offers?status=pending", w["provider_user"])
        if o["request_id"] == req["id"]
    ]
    return req, offer


def _record(w: dict[str, Any]) -> records.ProviderRecord:
    with session_scope(write=False) as session:
        return records.compute_records(session)[w["provider"]["id"]]


def _age(request_id: int, *, hours: float) -> None:
    """Move a request's window into the past, as if it had been booked for then."""
    with session_scope() as session:
        r = session.get(ServiceRequest, request_id)
        assert r is not None
        r.window_start = utcnow() - timedelta(hours=hours + 2)
        r.window_end = utcnow() - timedelta(hours=hours)
        session.add(r)


def test_acceptance_counts_answers_and_leaves_out_withdrawn_offers(api: Api) -> None:
    w = api.world()
    _, declined = _offer(api, w)
    api.ok("POST", f"/api/offers/{declined['id']}/decline", w["provider_user"], json={"reason": "忙"})
    drain_jobs()  # that request now has nobody left
    _, accepted = _offer(api, w)
    api.ok("POST", f"/api/offers/{accepted['id']}/accept", w["provider_user"])
    cancelled, _ = _offer(api, w)
    api.ok("POST", f"/api/requests/{cancelled['id']}/cancel", w["operator"], json={"reason": "不需要了"})
    record = _record(w)
    assert record.acceptance_rate == round(smoothed(1, 2, PRIOR_ACCEPTANCE), 4)  # withdrawn: no answer


def test_completion_rating_and_the_no_show_definition(api: Api) -> None:
    w = api.world()
    done, offer = _offer(api, w)
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    api.ok("POST", f"/api/requests/{done['id']}/check-in", w["provider_user"], json=HOME)
    api.ok("POST", f"/api/requests/{done['id']}/check-out", w["provider_user"], json=HOME)
    api.ok("POST", f"/api/requests/{done['id']}/feedback", w["operator"], 201, json={"rating": 5})
    # A job at the door nobody came to, its window over for an hour: a no-show.
    missed, offer = _offer(api, w)
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    _age(missed["id"], hours=1)
    # Its window ended ten minutes ago: still within the grace, not (yet) a no-show.
    late, offer = _offer(api, w)
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    _age(late["id"], hours=10 / 60)
    # Cancelled after its window began (the elder waited): a no-show; cancelled before: not.
    waited, offer = _offer(api, w)
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    api.ok("POST", f"/api/requests/{waited['id']}/cancel", w["operator"], json={"reason": "没人来"})
    _age(waited["id"], hours=1)
    early, offer = _offer(api, w, window_start=(utcnow() + timedelta(hours=5)).isoformat(),
                          window_end=(utcnow() + timedelta(hours=6)).isoformat())  # fmt: skip
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    api.ok("POST", f"/api/requests/{early['id']}/cancel", w["operator"], json={"reason": "改期"})
    with session_scope() as session:  # as if that cancellation came the day before, long ago
        r = session.get(ServiceRequest, early["id"])
        assert r is not None
        r.window_start, r.window_end = utcnow() - timedelta(hours=3), utcnow() - timedelta(hours=2)
        r.closed_at = utcnow() - timedelta(hours=30)
        session.add(r)
    record = _record(w)
    assert record.no_shows == 2
    assert record.completion_rate == round(smoothed(1, 1 + 2, PRIOR_COMPLETION), 4)
    assert record.rating == round(smoothed(5, 1, PRIOR_RATING), 3)


def test_a_dine_in_meal_never_checked_in_is_not_a_no_show(api: Api) -> None:
    w = api.world()  # the home-care provider delivers meals; dine-in meals are not its business
    delivered, offer = _offer(api, w, kind="meal", details={"slot": "lunch", "delivery": True})
    api.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    _age(delivered["id"], hours=1)
    assert _record(w).no_shows == 1
    with session_scope() as session:  # the same job as a dine-in meal: the elder comes to them
        r = session.get(ServiceRequest, delivered["id"])
        assert r is not None
        r.details = {"slot": "lunch", "delivery": False}
        session.add(r)
    assert _record(w).no_shows == 0


def test_the_snapshot_costs_the_same_few_queries_for_5_or_60_requests(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATCH_RECORD_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    w = api.world()
    statements: list[str] = []

    me = threading.get_ident()

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if threading.get_ident() == me:  # not the API's websocket hub, polling in its own thread
            statements.append(statement)

    def snapshot_queries(n: int) -> int:
        for _ in range(n):
            api.ok(
                "POST",
                "/api/requests",
                w["operator"],
                202,
                json={"elder_id": w["elder"]["id"], "kind": "home_care"},
            )
        engine = get_engine(write=False)
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            with session_scope(write=False) as session:
                snapshot = matching_service.load_snapshot(session)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(snapshot.requests) >= n
        return len(statements)

    few = snapshot_queries(5)
    many = snapshot_queries(55)
    assert few == many and few <= 17, statements
    # With the records cached (the default keeps them a minute) their five queries are saved.
    monkeypatch.setenv("MATCH_RECORD_CACHE_SECONDS", "3600")
    get_settings.cache_clear()
    snapshot_queries(1)
    assert snapshot_queries(1) == few - 5
