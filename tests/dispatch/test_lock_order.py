"""One lock order (core/events.py: the providers' rows, the event-order lock, then the rows of
offers and requests), and operators' actions that read after their locks.

Each test holds the match worker's real write transaction open, lets an operator's call run
into its locks (seen, not guessed with a sleep: in pg_stat_activity on PostgreSQL, as the
write lock's waiting thread on SQLite), then commits it. The races are PostgreSQL's, where
row locks are taken statement by statement; on SQLite the operator's call waits for the one
write lock before its first read, and the same answers are checked there too."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from dispatch.core.db import get_engine, session_scope
from dispatch.core.events import lock_event_order
from dispatch.matching import capacity
from dispatch.matching import service as matching_service
from dispatch.orders.models import Offer, ServiceRequest
from tests.helpers import Api, wait_for
from workers import matching


def _file(api: Api, w: dict[str, Any]) -> int:
    body = {"elder_id": w["elder"]["id"], "kind": "visit"}
    return int(api.ok("POST", "/api/requests", w["operator"], 202, json=body)["id"])


def _prepared() -> matching_service.Prepared:
    with session_scope(write=False) as session:
        snapshot = matching_service.load_snapshot(session)
    return matching.prepare(snapshot, matching_service.decide(snapshot))


def _someone_waits_on_a_lock() -> bool:
    if get_engine().dialect.name == "sqlite":  # core/writelock.py waits on a thread of this name
        return any(t.name == "sqlite-write-lock" and t.is_alive() for t in threading.enumerate())
    with get_engine().connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar()
    return bool(waiting)


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run an API call on a thread; its response, or what it raised, lands in the list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # a 500 raised through the test client
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _statuses(request_id: int) -> tuple[str, list[tuple[bool, str]]]:
    with session_scope(write=False) as session:
        request = session.get(ServiceRequest, request_id)
        assert request is not None
        offers = session.exec(
            select(Offer.manual, Offer.status).where(Offer.request_id == request_id).order_by(col(Offer.id))
        ).all()
    return request.status, [(manual, status) for manual, status in offers]


def test_the_event_lock_is_taken_again_after_the_savepoint_it_was_taken_in_rolled_back() -> None:
    if get_engine().dialect.name != "postgresql":
        pytest.skip(
            "PostgreSQL's advisory lock (SQLite has no such lock to take); CI runs this on PostgreSQL"
        )

    def held(session: Session) -> int:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid()"
                )
            ).scalar()
            or 0
        )

    with session_scope() as session:
        with session.begin_nested() as savepoint:
            lock_event_order(session)
            assert held(session) == 1
            savepoint.rollback()  # PostgreSQL lets go of a lock taken inside the savepoint
        assert held(session) == 0
        lock_event_order(session)
        assert held(session) == 1  # taken again, not trusted to a note of the savepoint's
        with session.begin_nested():
            lock_event_order(session)  # a released savepoint hands its lock to the transaction
        lock_event_order(session)
        assert held(session) == 1


def test_an_operator_dispatches_by_hand_a_request_the_matcher_is_offering_that_moment(api: Api) -> None:
    w = api.world()
    request_id = _file(api, w)
    prepared = _prepared()
    with session_scope() as matcher:
        applied = matching.apply_batch(matcher, prepared)
        assert applied.offered == 1  # written, not yet committed: the provider's row is locked
        assign, outcome = _in_thread(
            lambda: api.call(
                "POST",
                f"/api/requests/{request_id}/assign",
                w["operator"],
                json={"provider_id": w["provider"]["id"]},
            )
        )
        wait_for(_someone_waits_on_a_lock, what="the operator's assign waiting on the matcher's locks")
    assign.join(timeout=30)
    (response,) = outcome
    assert not isinstance(response, BaseException), response
    # Before the operator's reads waited for the locks, the matcher's commit made this a 409
    # ("changed by someone else; reload and retry") that a retry would have got through.
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "assigned"
    assert _statuses(request_id) == ("assigned", [(False, "withdrawn"), (True, "accepted")])


def test_an_operator_cancels_a_request_while_the_matcher_writes_its_offer(api: Api) -> None:
    w = api.world()
    request_id = _file(api, w)
    prepared = _prepared()
    with session_scope() as matcher:
        matcher.execute(text("SELECT 1"))  # begun (SQLite: the write lock, from the first statement)
        lock_event_order(matcher)  # the matcher's write takes this lock before the requests' rows
        cancel, outcome = _in_thread(
            lambda: api.call(
                "POST", f"/api/requests/{request_id}/cancel", w["operator"], json={"reason": "家属已安排"}
            )
        )
        wait_for(_someone_waits_on_a_lock, what="the operator's cancel waiting on the event lock")
        # When the cancel locked the request's row before the event lock, this write waited for
        # that row while the cancel waited for this lock: PostgreSQL's deadlock detector failed
        # one of them after a second (the cancel with a 500, or the matcher's batch).
        applied = matching.apply_batch(matcher, prepared)
        assert applied.offered == 1
    cancel.join(timeout=30)
    (response,) = outcome
    assert not isinstance(response, BaseException), response
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert _statuses(request_id) == ("cancelled", [(False, "withdrawn")])


def test_an_accept_does_not_wait_for_the_providers_the_matcher_holds(api: Api) -> None:
    """The matcher's provider locks do not stop a row that merely refers to a provider (the
    accepted request's provider_id takes a KEY SHARE lock for its foreign key). With FOR UPDATE
    they did: the accept batch, holding the event-order lock, waited for the provider's row
    while the matcher, holding it, waited for the event-order lock (bench/drive.py on
    PostgreSQL at 300/s: 8 transactions failed on a deadlock in 10 s, two accepts answered 500)."""
    if get_engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's row locks (SQLite has one writer at a time); CI runs this on PostgreSQL")
    w = api.world()
    request_id = _file(api, w)
    with session_scope() as matcher:
        assert matching.apply_batch(matcher, _prepared()).offered == 1
    (offer,) = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    api.as_(w["provider_user"])  # signed in before the matcher holds anything
    with session_scope() as matcher:
        capacity.lock_providers(matcher, [w["provider"]["id"]])  # as the matcher's next batch does
        accept, outcome = _in_thread(
            lambda: api.call("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
        )
        # Answered while the matcher still holds the provider's row (with FOR UPDATE it waited
        # here, and the matcher's next step below closed the deadlock).
        wait_for(lambda: outcome, what="the accept answered while the matcher holds its provider")
        lock_event_order(matcher)  # the matcher's write goes on to the event-order lock
    accept.join(timeout=30)
    (response,) = outcome
    assert not isinstance(response, BaseException), response
    assert response.status_code == 200, response.text
    assert _statuses(request_id) == ("assigned", [(False, "accepted")])
