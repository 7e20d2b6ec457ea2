"""Property tests through the database and real RQ workers, over random districts: providers
answer in parallel threads (every offer accepted twice at once, or declined) while the matcher
runs, round after round; in the end no provider has more jobs at once than its capacity, no
caregiver more than theirs, no request more than one accepted offer, and every request is
assigned or escalated with a reason."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import col, select

from dispatch.core.auth import Principal, Role
from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope
from dispatch.core.errors import DomainError
from dispatch.orders import offers, sweep
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from services.models import Caregiver, Provider
from tests.helpers import ELDER, HOME_CARE, Api, drain_jobs, make_user

KM = 1 / 111.0

district = st.fixed_dictionaries(
    {
        "providers": st.lists(
            st.fixed_dictionaries(
                {
                    "north_km": st.floats(-6, 6),
                    "capacity": st.integers(1, 3),
                    "caregivers": st.lists(st.sampled_from(["cleaning", "bathing"]), max_size=3),
                }
            ),
            min_size=1,
            max_size=3,
        ),
        "requests": st.lists(
            st.tuples(st.integers(0, 2), st.sampled_from([None, "cleaning", "bathing"]), st.booleans()),
            min_size=2,
            max_size=8,
        ),
        "answers": st.lists(st.sampled_from(["accept", "accept", "decline"]), min_size=30, max_size=30),
    }
)


def _reset() -> None:
    """Each example starts from a district of its own: earlier ones retired."""
    with session_scope() as session:
        session.execute(update(Provider).values(active=False))
        session.execute(
            update(ServiceRequest)
            .where(col(ServiceRequest.status).in_(["queued", "offered", "escalated"]))
            .values(status="cancelled")
        )
        session.execute(update(Offer).where(col(Offer.status) == "pending").values(status="withdrawn"))


def _answer(offer: Offer, answer: str) -> None:
    principal = Principal(id=0, username="p", role=Role.PROVIDER, provider_id=offer.provider_id)
    try:
        with session_scope() as session:
            assert offer.id is not None
            if answer == "accept":
                offers.accept(session, principal=principal, offer_id=offer.id)
            else:
                offers.decline(session, principal=principal, offer_id=offer.id, reason="忙")
    except DomainError:
        pass  # lost the race (409): exactly what the guards are for


def _build(api: Api, w: dict[str, Any], spec: dict[str, Any]) -> tuple[list[int], list[int]]:
    provider_ids = []
    for i, p in enumerate(spec["providers"]):
        body = {
            **HOME_CARE,
            "name": f"服务社{i}",
            "capacity": p["capacity"],
            "lat": ELDER["lat"] + p["north_km"] * KM,
        }
        created = api.ok("POST", "/api/providers", w["manager"], 201, json=body)
        provider_ids.append(created["id"])
        for j, skill in enumerate(p["caregivers"]):
            cg = {"name": f"护工{i}{j}", "phone": f"+861370000{i}{j:03d}", "skills": [skill]}
            api.ok("POST", f"/api/providers/{created['id']}/caregivers", w["manager"], 201, json=cg)
    elders = [
        api.ok("POST", "/api/elders", w["operator"], 201, json={**ELDER, "phone": f"+861380000{k:04d}"})["id"]
        for k in range(3)
    ]
    request_ids = []
    for elder, skill, urgent in spec["requests"]:
        body = {
            "elder_id": elders[elder],
            "kind": "home_care",
            "details": {"skills": [skill] if skill else []},
        }
        if urgent:
            body["priority"] = "urgent"
        request_ids.append(api.ok("POST", "/api/requests", w["operator"], 202, json=body)["id"])
    return provider_ids, request_ids


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=district)
def test_concurrent_answers_never_overbook_and_every_request_ends_placed_or_explained(
    api: Api, spec: dict[str, Any]
) -> None:
    _reset()
    w = {"manager": make_user(Role.MANAGER), "operator": make_user(Role.OPERATOR)}
    provider_ids, request_ids = _build(api, w, spec)
    answers = iter(spec["answers"])
    drain_jobs()
    for _ in range(8):
        _check_held(provider_ids)
        with session_scope(write=False) as session:
            pending = list(
                session.exec(
                    select(Offer).where(
                        col(Offer.request_id).in_(request_ids), col(Offer.status) == OfferStatus.PENDING
                    )
                )
            )
        if not pending:
            break
        # Half the offers are answered now, in parallel, while the matcher runs; the rest stay
        # pending into the next round, so new offers are made while others still hold capacity.
        threads = []
        for offer in pending[: max(1, len(pending) // 2)]:
            answer = next(answers, "accept")
            for _twice in range(2 if answer == "accept" else 1):  # a double tap races itself
                threads.append(threading.Thread(target=_answer, args=(offer, answer)))
        for t in threads:
            t.start()
        drain_jobs()  # the matcher runs meanwhile (RQ's worker needs the main thread)
        for t in threads:
            t.join(timeout=60)
        drain_jobs()
    with session_scope() as session:  # what is left goes in front of the operators, as the sweeper does
        session.execute(
            update(Offer)
            .where(col(Offer.request_id).in_(request_ids), col(Offer.status) == "pending")
            .values(expires_at=utcnow())
        )
        session.execute(
            update(ServiceRequest).where(col(ServiceRequest.id).in_(request_ids)).values(due_at=utcnow())
        )
        sweep.escalate_overdue(session)
    _check(provider_ids, request_ids)


def _check_held(provider_ids: list[int]) -> None:
    """At every moment: jobs at once plus offers pending (which hold a unit) within capacity."""
    with session_scope(write=False) as session:
        capacity = {
            p.id: p.capacity for p in session.exec(select(Provider).where(col(Provider.id).in_(provider_ids)))
        }
        jobs = Counter(
            r.provider_id
            for r in session.exec(
                select(ServiceRequest).where(
                    col(ServiceRequest.provider_id).in_(provider_ids),
                    col(ServiceRequest.status).in_(["assigned", "in_service"]),
                )
            )
        )
        held = Counter(
            o.provider_id
            for o in session.exec(
                select(Offer).where(
                    col(Offer.provider_id).in_(provider_ids), col(Offer.status) == OfferStatus.PENDING
                )
            )
        )
    for pid, cap in capacity.items():
        assert jobs[pid] + held[pid] <= cap, (pid, jobs[pid], held[pid], cap)


def _check(provider_ids: list[int], request_ids: list[int]) -> None:
    with session_scope(write=False) as session:
        requests = list(session.exec(select(ServiceRequest).where(col(ServiceRequest.id).in_(request_ids))))
        accepted = Counter(
            o.request_id
            for o in session.exec(
                select(Offer).where(
                    col(Offer.request_id).in_(request_ids), col(Offer.status) == OfferStatus.ACCEPTED
                )
            )
        )
        capacity = {
            p.id: p.capacity for p in session.exec(select(Provider).where(col(Provider.id).in_(provider_ids)))
        }
        staff = {
            c.id: c.provider_id
            for c in session.exec(select(Caregiver).where(col(Caregiver.provider_id).in_(provider_ids)))
        }
    for r in requests:
        assert r.status in ("assigned", "escalated"), (r.id, r.status)
        assert (r.status == "escalated") == (r.escalation_reason is not None), (r.id, r.escalation_reason)
        assert accepted[r.id] == (1 if r.status == "assigned" else 0), r.id
        if r.status == "assigned":
            assert r.provider_id in capacity and (
                r.caregiver_id is None or staff[r.caregiver_id] == r.provider_id
            )
    jobs = Counter(r.provider_id for r in requests if r.status == "assigned")
    for pid, n in jobs.items():
        assert n <= capacity[pid], (pid, n, capacity[pid])
    per_caregiver = Counter(r.caregiver_id for r in requests if r.status == "assigned" and r.caregiver_id)
    assert all(n <= 3 for n in per_caregiver.values()), per_caregiver  # CAREGIVER_MAX_JOBS
