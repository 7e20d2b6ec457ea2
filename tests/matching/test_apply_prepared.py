"""The match worker reads what its write transaction needs before taking it (workers/matching.py:
prepare, then apply_batch). A request changed in between (cancelled, dispatched by hand) is
still left alone: its compare-and-set in the write fails, so it gets no offer, no escalation,
no event and no text, and the rest of the batch is applied."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.core.events import Event
from dispatch.matching import service as matching_service
from dispatch.notify.models import Message
from dispatch.orders.models import Offer, ServiceRequest
from tests.helpers import Api, make_user
from workers import matching


def _file(api: Api, w: dict[str, Any], kind: str) -> int:
    body = {"elder_id": w["elder"]["id"], "kind": kind}
    return int(api.ok("POST", "/api/requests", w["operator"], 202, json=body)["id"])


def _prepared() -> matching_service.Prepared:
    with session_scope(write=False) as session:
        snapshot = matching_service.load_snapshot(session)
    return matching.prepare(snapshot, matching_service.decide(snapshot))


def test_a_request_changed_after_the_reads_gets_no_offer_no_escalation_and_no_text(api: Api) -> None:
    w = api.world()
    daughter = make_user(Role.FAMILY, phone="+8613900000088")
    api.ok("POST", f"/api/elders/{w['elder']['id']}/family", w["operator"], 201, json={"username": daughter})
    kept, cancelled, by_hand = (_file(api, w, "visit") for _ in range(3))
    # Nobody in the world serves day care: the matcher escalates these two.
    escalated, cancelled_escalation = _file(api, w, "day_care"), _file(api, w, "day_care")
    prepared = _prepared()
    assert prepared.skipped == 0 and {m.request_id for m in prepared.offers.texts} == {
        kept,
        cancelled,
        by_hand,
    }
    # Meanwhile, before the matcher's write transaction: an operator cancels two requests and
    # dispatches one by hand.
    for request_id in (cancelled, cancelled_escalation):
        api.ok("POST", f"/api/requests/{request_id}/cancel", w["operator"], json={"reason": "不需要了"})
    api.ok(
        "POST", f"/api/requests/{by_hand}/assign", w["operator"], json={"provider_id": w["provider"]["id"]}
    )
    with session_scope() as session:
        applied = matching.apply_batch(session, prepared)
    assert (applied.offered, applied.escalated, applied.skipped) == (1, 1, 3)
    assert applied.retry  # a lost compare-and-set owes another run, as a capacity taken does
    with session_scope(write=False) as session:
        statuses = dict(session.exec(select(ServiceRequest.id, ServiceRequest.status)).all())
        matcher_offers = session.exec(select(Offer).where(col(Offer.manual).is_(False))).all()
        events = session.exec(
            select(Event.request_id, Event.type).where(
                col(Event.type).in_(["request.offered", "request.escalated"])
            )
        ).all()
        texts = session.exec(select(Message.request_id, Message.purpose)).all()
    assert statuses == {
        kept: "offered",
        cancelled: "cancelled",
        by_hand: "assigned",
        escalated: "escalated",
        cancelled_escalation: "cancelled",
    }
    assert [o.request_id for o in matcher_offers] == [kept] and applied.offer_ids == [matcher_offers[0].id]
    assert sorted(events) == sorted([(kept, "request.offered"), (escalated, "request.escalated")])
    assert [r for r, purpose in texts if purpose == "offer"] == [kept]
    assert [r for r, purpose in texts if purpose == "escalated"] == [escalated]  # the family's


def test_a_request_changed_before_the_reads_is_left_out_there(api: Api) -> None:
    w = api.world()
    kept, cancelled = _file(api, w, "visit"), _file(api, w, "visit")
    with session_scope(write=False) as session:
        snapshot = matching_service.load_snapshot(session)
    decisions = matching_service.decide(snapshot)
    api.ok("POST", f"/api/requests/{cancelled}/cancel", w["operator"], json={"reason": "不需要了"})
    prepared = matching.prepare(snapshot, decisions)
    assert prepared.skipped == 1 and set(prepared.requests) == {kept}
    assert [m.request_id for m in prepared.offers.texts] == [kept]  # no text prepared for it
    with session_scope() as session:
        applied = matching.apply_batch(session, prepared)
    assert (applied.offered, applied.skipped, applied.retry) == (1, 1, False)


def test_the_offers_returned_are_the_stored_ones(api: Api) -> None:
    w = api.world()
    ids = sorted(_file(api, w, "visit") for _ in range(3))
    prepared = _prepared()
    with session_scope() as session:
        applied = matching.apply_batch(session, prepared)
        stored = {
            o.request_id: o for o in session.exec(select(Offer).where(col(Offer.id).in_(applied.offer_ids)))
        }
        assert sorted(stored) == ids and len(applied.offer_ids) == 3
        for request_id, offer in stored.items():  # every column written as prepared, the defaults too
            assert offer.model_dump(exclude={"id"}) == prepared.offers.rows[request_id]
            assert offer.status == "pending" and offer.reason == "" and offer.responded_at is None
        made = {h.provider_id for h in applied.holdings_made}
        assert made == {o.provider_id for o in stored.values()} and len(applied.holdings_made) == 3
