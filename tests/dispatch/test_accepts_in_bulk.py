"""Accepts written set-wise (dispatch/orders/accepts.py): every accept of a batch gets the
answer it alone would have got (404, 409 or its request), the winners get the same rows as one
accept at a time, each audited as its own caller, and a batch whose compare-and-set loses is
rolled back whole and taken one accept at a time."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from dispatch.core.audit import AuditEntry
from dispatch.core.auth import Principal, Role, User
from dispatch.core.db import session_scope
from dispatch.core.errors import Conflict, NotFound
from dispatch.core.events import Event
from dispatch.core.jobs import COALESCE_SMS, JobName, QueueName
from dispatch.core.outbox import OutboxJob
from dispatch.core.redis import get_queue
from dispatch.notify.models import Message
from dispatch.orders import accepts
from dispatch.orders.accepts import AcceptItem, write_accepts
from dispatch.orders.models import Offer, ServiceRequest
from dispatch.orders.schemas import RequestRead
from tests.helpers import HOME_CARE, Api, drain_jobs, make_user


def _principal(username: str) -> Principal:
    with session_scope(write=False) as session:
        return Principal.of(session.exec(select(User).where(User.username == username)).one())


def _offers(api: Api, n: int, *, family: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    w = api.world()
    if family:  # a relative with a phone: every assignment is texted to her
        daughter = make_user(Role.FAMILY, phone="+8613900000088")
        api.ok(
            "POST", f"/api/elders/{w['elder']['id']}/family", w["operator"], 201, json={"username": daughter}
        )
    body = {"elder_id": w["elder"]["id"], "kind": "visit"}
    for _ in range(n):
        api.ok("POST", "/api/requests", w["operator"], 202, json=body)
    drain_jobs()
    pending = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    assert len(pending) == n
    return w, sorted(pending, key=lambda o: o["id"])


def test_each_accept_of_a_batch_gets_its_own_answer(api: Api) -> None:
    w, pending = _offers(api, 4)
    mine = _principal(w["provider_user"])
    other = api.ok("POST", "/api/providers", w["manager"], 201, json={**HOME_CARE, "name": "别家"})
    stranger = _principal(make_user(Role.PROVIDER, provider_id=other["id"]))
    expired = pending[3]
    with session_scope() as session:
        session.execute(
            text("UPDATE offer SET expires_at = '2000-01-01 00:00:00.000000' WHERE id = :id"),
            {"id": expired["id"]},
        )
    items = [
        AcceptItem(mine, pending[0]["id"], "10.0.0.1"),
        AcceptItem(stranger, pending[1]["id"], "10.0.0.2"),  # not its offer: 404, as if missing
        AcceptItem(mine, pending[2]["id"], "10.0.0.3"),
        AcceptItem(mine, pending[0]["id"], "10.0.0.4"),  # the double tap: the first one won
        AcceptItem(mine, expired["id"], "10.0.0.5"),
        AcceptItem(mine, 999_999, "10.0.0.6"),
        AcceptItem(mine, pending[1]["id"], "10.0.0.7"),
    ]
    results = write_accepts(items)
    assert [type(r).__name__ for r in results] == [
        "RequestRead", "NotFound", "RequestRead", "Conflict", "Conflict", "NotFound", "RequestRead",
    ]  # fmt: skip
    won = {0: pending[0], 2: pending[2], 6: pending[1]}
    for index, offer in won.items():
        read = results[index]
        assert isinstance(read, RequestRead)
        assert read.id == offer["request_id"] and read.status == "assigned"
        assert read.provider_id == w["provider"]["id"]
        assert [t.type for t in read.timeline][-1] == "request.assigned"
    assert "expired" in str(results[4])
    with session_scope(write=False) as session:
        statuses = {o.id: o.status for o in session.exec(select(Offer))}
        assert statuses == {
            pending[0]["id"]: "accepted", pending[1]["id"]: "accepted",
            pending[2]["id"]: "accepted", expired["id"]: "pending",
        }  # fmt: skip
        for offer in won.values():
            request = session.get(ServiceRequest, offer["request_id"])
            assert request is not None and request.status == "assigned" and request.assigned_at is not None
            assert request.provider_id == w["provider"]["id"]
            assert request.caregiver_id == offer["caregiver_id"]
        assigned = session.exec(select(Event).where(col(Event.type) == "request.assigned")).all()
        assert sorted(e.request_id or 0 for e in assigned) == sorted(o["request_id"] for o in won.values())
        for event in assigned:
            offer = next(o for o in won.values() if o["request_id"] == event.request_id)
            assert event.data == {
                "offer_id": offer["id"], "provider_id": w["provider"]["id"], "caregiver_id": offer["caregiver_id"],
            }  # fmt: skip
            assert event.provider_id == w["provider"]["id"] and event.status == "assigned"
        audited = session.exec(select(AuditEntry).where(col(AuditEntry.action) == "request.assigned")).all()
        clients = {int(a.what.split()[1]): (a.actor_id, a.client) for a in audited}
        assert clients == {
            pending[0]["request_id"]: (mine.id, "10.0.0.1"),
            pending[2]["request_id"]: (mine.id, "10.0.0.3"),
            pending[1]["request_id"]: (mine.id, "10.0.0.7"),
        }


def test_a_batch_that_loses_a_race_is_taken_one_by_one(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The set-wise writes done before the race was lost are rolled back to their savepoint:
    the accepts taken one at a time then leave one accepted offer and one event per request."""
    w, pending = _offers(api, 3)
    mine = _principal(w["provider_user"])
    real = accepts.transition_many
    calls: list[int] = []

    def loses(session: Any, requests: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(requests))
        real(session, requests, *args, **kwargs)  # everything written ...
        raise accepts._RaceLost  # ... then a compare-and-set is found lost, deep in the batch

    monkeypatch.setattr(accepts, "transition_many", loses)
    results = write_accepts([AcceptItem(mine, o["id"], "h") for o in pending] + [AcceptItem(mine, 999_999)])
    assert calls == [3]
    # (The offers read before the race, still referenced by its traceback, must not be taken
    # for the truth: the one-by-one pass reads them again.)
    assert [isinstance(r, RequestRead) for r in results] == [True, True, True, False], results
    assert isinstance(results[3], NotFound)
    with session_scope(write=False) as session:
        assert {o.status for o in session.exec(select(Offer))} == {"accepted"}
        assigned = session.exec(select(Event).where(col(Event.type) == "request.assigned")).all()
        assert sorted(e.request_id or 0 for e in assigned) == sorted(o["request_id"] for o in pending)
        audited = session.exec(select(AuditEntry).where(col(AuditEntry.action) == "request.assigned")).all()
        assert len(audited) == 3 and {a.actor_id for a in audited} == {mine.id}


def test_a_batch_that_loses_a_race_still_owes_the_texts_of_the_accepts_taken_one_by_one(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's texts and their send job are rolled back with its savepoint; the accepts
    taken one by one owe the send job again (a new outbox row), and it is woken after the commit."""
    w, pending = _offers(api, 3, family=True)
    mine = _principal(w["provider_user"])
    real = accepts.transition_many
    wrote: list[int] = []
    open_sends = select(OutboxJob).where(
        col(OutboxJob.job) == JobName.SEND_PENDING_SMS, col(OutboxJob.done_at).is_(None)
    )

    def loses(session: Any, requests: Any, *args: Any, **kwargs: Any) -> Any:
        real(session, requests, *args, **kwargs)
        wrote.append(len(session.exec(open_sends).all()))
        raise accepts._RaceLost

    monkeypatch.setattr(accepts, "transition_many", loses)
    results = write_accepts([AcceptItem(mine, o["id"], "h") for o in pending])
    assert all(isinstance(r, RequestRead) for r in results), results
    assert wrote == [1]  # the batch had owed its send job before the race was lost
    with session_scope(write=False) as session:
        assert len(session.exec(select(Message).where(col(Message.purpose) == "assigned")).all()) == 3
        assert len(session.exec(open_sends).all()) == 1
    assert [j.id.startswith(f"{COALESCE_SMS}-") for j in get_queue(QueueName.NOTIFY).get_jobs()] == [True]


def test_accepting_again_after_the_batch_is_409(api: Api) -> None:
    w, pending = _offers(api, 1)
    api.ok("POST", f"/api/offers/{pending[0]['id']}/accept", w["provider_user"])
    again = write_accepts([AcceptItem(_principal(w["provider_user"]), pending[0]["id"])])
    assert isinstance(again[0], Conflict) and "accepted" in str(again[0])


def test_columns_that_differ_row_by_row_are_stored_as_one_at_a_time_would(api: Api) -> None:
    """transition_many(changes=...) writes per-row values with one CASE per column: dates are
    stored in the column's own format (read back equal), NULL and ids where they differ."""
    from datetime import timedelta

    from dispatch.core.clock import utcnow
    from dispatch.orders.lifecycle import RequestStatus, transition_many
    from services.models import Caregiver

    w, pending = _offers(api, 3)
    base = utcnow().replace(microsecond=0)
    with session_scope(write=False) as session:
        caregivers = [
            c.id for c in session.exec(select(Caregiver).where(Caregiver.provider_id == w["provider"]["id"]))
        ]
    wanted: dict[int, dict[str, Any]] = {}
    for n, offer in enumerate(pending):
        wanted[offer["request_id"]] = {
            "assigned_at": base + timedelta(minutes=7 * n, microseconds=123 * n),
            "caregiver_id": None if n == 0 or not caregivers else caregivers[n % len(caregivers)],
            "provider_id": w["provider"]["id"],
        }
    with session_scope() as session:
        requests = [session.get(ServiceRequest, o["request_id"]) for o in pending]
        pairs = transition_many(
            session,
            [r for r in requests if r is not None],
            RequestStatus.ASSIGNED,
            data=lambda r: {},
            event_provider_id=lambda r: w["provider"]["id"],
            changes=lambda r: wanted[r.id or 0],
        )
        assert len(pairs) == 3
    with session_scope(write=False) as session:
        for request_id, values in wanted.items():
            stored = session.get(ServiceRequest, request_id)
            assert stored is not None and stored.status == "assigned"
            assert stored.assigned_at == values["assigned_at"]
            assert stored.caregiver_id == values["caregiver_id"]
            assert stored.provider_id == values["provider_id"]
        # The format on disk is the column's: ordering and comparison in SQL still work.
        latest = session.exec(select(ServiceRequest).order_by(col(ServiceRequest.assigned_at).desc())).first()
        assert latest is not None and latest.id == pending[2]["request_id"]


def test_the_batcher_reads_first_and_answers_what_a_read_says(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batcher reads a batch (offers, requests, texts, timelines) before its write
    transaction and answers from what it read and wrote. Its answers equal a later read; and
    when something changed in between (here an operator cancelled one request), the compare-
    and-set fails the batch, which is taken one accept at a time: that one is 409, the others
    are assigned, once each."""
    import asyncio

    w, pending = _offers(api, 3)
    mine = _principal(w["provider_user"])
    real_prepare = accepts._prepare

    def prepare_then_cancel(items: Any) -> Any:
        prepared = real_prepare(items)
        api.ok(
            "POST",
            f"/api/requests/{pending[1]['request_id']}/cancel",
            w["operator"],
            json={"reason": "家属取消"},
        )
        return prepared

    monkeypatch.setattr(accepts, "_prepare", prepare_then_cancel)
    items = [AcceptItem(mine, o["id"], "10.0.0.9") for o in pending]
    results = asyncio.run(accepts.AcceptBatcher()._write_async(items))
    assert isinstance(results[1], Conflict), results
    for index in (0, 2):
        read = results[index]
        assert isinstance(read, RequestRead) and read.status == "assigned"
        assert read.model_dump(mode="json") == api.ok("GET", f"/api/requests/{read.id}", w["operator"])
    with session_scope(write=False) as session:
        statuses = {o.id: o.status for o in session.exec(select(Offer))}
        assert [statuses[o["id"]] == "accepted" for o in pending] == [True, False, True]
        assigned = session.exec(select(Event).where(col(Event.type) == "request.assigned")).all()
        assert sorted(e.request_id or 0 for e in assigned) == sorted(pending[i]["request_id"] for i in (0, 2))
    # Without a change in between, the answers come from the batch itself, no second read.
    monkeypatch.setattr(accepts, "_prepare", real_prepare)
    w2, more = _offers(api, 2)
    mine2 = _principal(w2["provider_user"])
    answers = asyncio.run(accepts.AcceptBatcher()._write_async([AcceptItem(mine2, o["id"]) for o in more]))
    for read in answers:
        assert isinstance(read, RequestRead)
        assert read.model_dump(mode="json") == api.ok("GET", f"/api/requests/{read.id}", w2["operator"])
        assert [t.type for t in read.timeline] == ["request.created", "request.offered", "request.assigned"]
