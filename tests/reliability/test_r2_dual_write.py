"""R2: a crash between the SQL commit and the enqueue, at every such point (the API's intake,
the matcher's offers, decline and expiry requeues, outgoing messages all pass the one
`outbox.after_commit` point), at least 20 times each in the API and in the matching worker.
Nothing is lost and nothing happens twice: the relay hands over what the crash dropped, and
jobs that run twice have their effects once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from dispatch.core.db import session_scope
from dispatch.core.events import Event
from dispatch.core.jobs import QueueName
from dispatch.orders.models import Offer, ServiceRequest
from tests.helpers import wait_for
from tests.reliability.harness import Answerer, Http, Record, build_world, check, cluster, post_requests

pytestmark = [pytest.mark.fault, pytest.mark.e2e]

CRASHES = 20


def _crashes(log: Path) -> int:
    return (
        log.read_text(errors="replace").count("fault injection: crashing at outbox.after_commit")
        if log.exists()
        else 0
    )


def test_r2_crash_after_commit_before_enqueue(fault_env: dict[str, str], logs: Path) -> None:
    crash = {"ELDERCARE_CRASH_AT": "outbox.after_commit:0.25"}
    with cluster(fault_env, logs) as c:
        base = c.api()
        c.procs["api"].env.update(crash)  # from its first restart on, the API crashes after commits
        world = build_world(base, elders=20, providers=8, capacity=100)
        c.procs["api"].kill()
        c.add("match", "worker", "--queue", QueueName.MATCH.value, env=crash)
        c.add("notify", "worker", "--queue", QueueName.NOTIFY.value)
        c.add("maintenance", "worker", "--queue", QueueName.MAINTENANCE.value)
        c.add("scheduler", "scheduler")
        c.watch()
        http = Http(base)
        record = Record()
        deadline = time.monotonic() + 240
        with Answerer(http, world, decline=0.15, ignore=0.15):
            batch = 0
            while _crashes(logs / "api.log") < CRASHES or _crashes(logs / "match.log") < CRASHES:
                assert time.monotonic() < deadline, "not enough injected crashes in time"
                post_requests(http, world, record, count=20, clients=4, kinds=["home_care", "visit"])
                batch += 1
            wait_for(lambda: not check(record).lost, timeout=180, interval=1, what="every request to settle")
        api_crashes, match_crashes = _crashes(logs / "api.log"), _crashes(logs / "match.log")
    verdict = check(record)
    print(f"\nR2: {verdict.total} requests, {api_crashes} API and {match_crashes} worker crashes after commit, "
          f"statuses {verdict.by_status}")  # fmt: skip
    assert api_crashes >= CRASHES and match_crashes >= CRASHES
    assert verdict.lost == [] and verdict.double_assigned == []
    ids = list(record.acked.values())
    assert len(set(ids)) == len(record.acked), "an idempotency key produced two requests"
    with session_scope(write=False) as s:
        assert s.exec(select(func.count()).select_from(ServiceRequest)).one() == len(ids)
        offers = dict(s.exec(select(Offer.request_id, func.count()).group_by(Offer.request_id)).all())
        by_type = s.exec(
            select(Event.request_id, Event.type, func.count())
            .where(col(Event.request_id).in_(ids))
            .group_by(Event.request_id, Event.type)
        ).all()
        resolved = dict(
            s.exec(
                select(Offer.request_id, func.count())
                .where(col(Offer.status).in_(["declined", "expired"]))
                .group_by(Offer.request_id)
            ).all()
        )
    offered_events = {rid: n for rid, t, n in by_type if t == "request.offered"}
    requeued_events = {rid: n for rid, t, n in by_type if t in ("request.declined", "request.expired")}
    created_events = {rid: n for rid, t, n in by_type if t == "request.created"}
    for rid in ids:
        assert created_events.get(rid) == 1, f"request {rid} created {created_events.get(rid)} times"
        # One offer per `request.offered`, one requeue per declined/expired offer: no effect twice.
        assert offered_events.get(rid, 0) == offers.get(rid, 0), f"request {rid}: offers and events differ"
        assert requeued_events.get(rid, 0) <= resolved.get(rid, 0), f"request {rid} requeued twice"
