"""The matcher's offers are written set-wise (offers.make_offers, lifecycle.transition_many): the
same rows as one offer at a time — an offer, a request.offered event, an audit row and an SMS
each — a request changed since it was read left out without a trace, and one shared expiry job
for the run instead of one per offer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlmodel import col, select

from dispatch.core.audit import AuditEntry
from dispatch.core.clock import local
from dispatch.core.db import session_scope
from dispatch.core.events import Event
from dispatch.core.jobs import JobName
from dispatch.core.outbox import OutboxJob
from dispatch.matching.core import Decision
from dispatch.notify.models import Message
from dispatch.orders import offers
from dispatch.orders.models import Offer, ServiceRequest
from tests.helpers import Api, drain_jobs


def test_a_batch_of_offers_in_one_write_leaves_out_a_request_changed_meanwhile(api: Api) -> None:
    w = api.world()
    ids = [
        api.ok(
            "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "visit"}
        )["id"]
        for _ in range(3)
    ]
    with session_scope() as session:
        requests = [session.get(ServiceRequest, i) for i in ids]
        assert all(r is not None for r in requests)
        # Someone else changes the third after it was read: its version moves on.
        session.execute(
            text("UPDATE service_request SET version = version + 1 WHERE id = :id"), {"id": ids[2]}
        )
        made = offers.make_offers(
            session,
            [
                (r, Decision(r.id or 0, r.version, w["provider"]["id"], distance_km=0.4))
                for r in requests
                if r is not None
            ],
        )
        assert sorted(o.request_id for o in made) == ids[:2]
        assert [r.status for r in requests if r is not None] == ["offered", "offered", "queued"]
    with session_scope(write=False) as session:
        assert sorted(session.exec(select(Offer.request_id)).all()) == ids[:2]  # the loser's offer is gone
        offered = session.exec(select(Event).where(col(Event.type) == "request.offered")).all()
        assert sorted(e.request_id or 0 for e in offered) == ids[:2]
        for event in offered:
            offer = next(o for o in made if o.request_id == event.request_id)
            assert event.data["offer_id"] == offer.id and event.provider_id == w["provider"]["id"]
            assert event.status == "offered" and event.data["distance_km"] == 0.4
        audited = session.exec(select(AuditEntry).where(col(AuditEntry.action) == "request.offered")).all()
        assert sorted(a.what for a in audited) == sorted(
            f"request {e.request_id} event {e.seq}" for e in offered
        )
        texts = session.exec(select(Message).where(col(Message.purpose) == "offer")).all()
        assert sorted(m.request_id or 0 for m in texts) == ids[:2]
        assert all(m.to_phone == w["provider"]["phone"] and f"#{m.request_id}" in m.body for m in texts)
        (expiry,) = session.exec(select(OutboxJob).where(col(OutboxJob.job) == JobName.EXPIRE_OFFERS)).all()
        assert sorted(expiry.payload["offer_ids"]) == sorted(o.id for o in made)
        assert expiry.run_at is not None and all(o.expires_at == expiry.run_at for o in made)
        third = session.get(ServiceRequest, ids[2])
        assert third is not None and third.status == "queued"


def test_the_shared_expiry_job_expires_only_the_offers_still_pending(api: Api) -> None:
    from workers.offers import expire_offers

    w = api.world()
    body = {"elder_id": w["elder"]["id"], "kind": "visit"}
    ids = [api.ok("POST", "/api/requests", w["operator"], 202, json=body)["id"] for _ in range(2)]
    drain_jobs()
    pending = api.ok("GET", "/api/offers?status=pending", w["provider_user"])
    assert sorted(o["request_id"] for o in pending) == sorted(ids)
    answered = pending[0]
    api.ok("POST", f"/api/offers/{answered['id']}/accept", w["provider_user"])
    with session_scope() as session:  # the deadline has come
        session.execute(text("UPDATE offer SET expires_at = '2000-01-01 00:00:00.000000'"))
    assert expire_offers(offer_ids=[o["id"] for o in pending]) == 1
    assert expire_offers(offer_ids=[o["id"] for o in pending]) == 0  # a second run changes nothing
    statuses = {o["id"]: o["status"] for o in api.ok("GET", "/api/offers", w["admin"])}
    assert statuses[answered["id"]] == "accepted"
    assert statuses[pending[1]["id"]] == "expired"


def test_the_providers_text_of_an_offer_is_worded_as_ever(api: Api) -> None:
    """The texts are prepared before the matcher's write transaction (offers.prepare_offers):
    each is still the one that notify.rules wrote inside it, word for word, to the same phone."""
    w = api.world()
    elder_id = w["elder"]["id"]
    visit = api.ok("POST", "/api/requests", w["operator"], 202, json={"elder_id": elder_id, "kind": "visit"})
    meal = {"elder_id": elder_id, "kind": "meal", "details": {"slot": "dinner", "delivery": True}}
    delivered = api.ok("POST", "/api/requests", w["operator"], 202, json=meal)
    drain_jobs()
    offered = {o["request_id"]: o for o in api.ok("GET", "/api/offers?status=pending", w["admin"])}
    assert sorted(offered) == sorted([visit["id"], delivered["id"]])
    with session_scope(write=False) as session:
        texts = session.exec(select(Message).where(col(Message.purpose) == "offer")).all()
    assert len(texts) == 2
    for request, service in ((visit, "探访"), (delivered, "助餐（晚餐，送餐上门）")):
        start, end = local(_at(request["window_start"])), local(_at(request["window_end"]))
        deadline = local(_at(offered[request["id"]]["expires_at"]))
        (text,) = [m for m in texts if m.request_id == request["id"]]
        assert text.body == (
            f"【静海养老】新派单#{request['id']}：{service}，张*英（静海镇），"
            f"{start.month}月{start.day}日{start:%H:%M}-{end:%H:%M}。"
            f"回复1接单，回复2拒绝，请于{deadline:%H:%M}前回复。"
        )
        assert (text.to_phone, text.purpose, text.audience) == (w["provider"]["phone"], "offer", "provider")
        assert (text.elder_id, text.provider_id) == (elder_id, w["provider"]["id"])


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)
