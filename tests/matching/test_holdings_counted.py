"""The capacity in use, counted in SQL (capacity.load_holdings groups alike holdings), is the
same as counting every assigned job and pending offer one by one: over random mixes of
statuses, kinds, slots, windows, caregivers and offers, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope
from dispatch.demo.seed import seed_demo
from dispatch.elders.models import Elder
from dispatch.matching import capacity
from dispatch.matching.core import Holding, Usage
from dispatch.orders.models import Offer, ServiceRequest
from services.models import Caregiver, Provider

STATUSES = ["queued", "offered", "assigned", "in_service", "completed", "cancelled", "escalated"]
KIND_OF = {"canteen": "meal", "day_care": "day_care", "home_care": "visit"}


def _one_by_one(
    session: Session, provider_ids: list[int] | None, exclude_offer_id: int | None
) -> list[Holding]:
    """The reference: a Holding per job and per pending offer, read row by row."""
    since = utcnow() - timedelta(days=2)
    out: list[Holding] = []
    for r in session.exec(select(ServiceRequest).where(col(ServiceRequest.provider_id).is_not(None))):
        if provider_ids is not None and r.provider_id not in provider_ids:
            continue
        if r.status in ("assigned", "in_service") or (r.status == "completed" and r.window_start >= since):
            assert r.provider_id is not None
            out.append(
                Holding(
                    r.provider_id, r.caregiver_id, r.kind, r.window_start, r.details.get("slot"), r.status
                )
            )
    for o in session.exec(select(Offer).where(Offer.status == "pending")):
        if (provider_ids is not None and o.provider_id not in provider_ids) or o.id == exclude_offer_id:
            continue
        r = session.get_one(ServiceRequest, o.request_id)
        out.append(
            Holding(o.provider_id, o.caregiver_id, r.kind, r.window_start, r.details.get("slot"), "pending")
        )
    return out


def _usage(
    session: Session, holdings: list[Holding]
) -> tuple[dict[object, int], dict[object, int], dict[int, int]]:
    providers = {p.id: p for p in capacity.load_providers(session)}
    usage = Usage(providers, holdings)
    clean = lambda d: {k: v for k, v in d.items() if v}  # noqa: E731
    return clean(usage.used), clean(usage.held), clean(usage.caregiver_jobs)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counted_in_sql_is_counted_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    with session_scope() as session:
        seed_demo(session, elders=20)
    now = utcnow()
    # A few fixed windows (a day's slots: the grouping has something to group) and random ones.
    fixed = [
        now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=h) for h in (-60, -30, -3, 2, 20)
    ]
    with session_scope() as session:
        providers = [p for p in session.exec(select(Provider)).all() if p.id is not None][:40]
        caregivers: dict[int, list[int | None]] = {}
        for cg in session.exec(select(Caregiver)):
            caregivers.setdefault(cg.provider_id, []).append(cg.id)
        elders = [e.id for e in session.exec(select(Elder)).all() if e.id is not None]
        requests = []
        for _ in range(600):
            p = rng.choice(providers)
            start = (
                rng.choice(fixed) if rng.random() < 0.7 else now + timedelta(minutes=rng.randint(-4000, 2000))
            )
            slot = rng.choice(["lunch", "dinner", None])
            r = ServiceRequest(
                elder_id=rng.choice(elders),
                kind=KIND_OF[p.kind] if rng.random() < 0.8 else rng.choice(list(KIND_OF.values())),
                status=rng.choice(STATUSES),
                details={"slot": slot} if slot else {},
                window_start=start,
                window_end=start + timedelta(hours=2),
                township=p.township,
                provider_id=p.id if rng.random() < 0.9 else None,
                caregiver_id=rng.choice([*caregivers.get(p.id or 0, []), None]),
                due_at=start,
            )
            session.add(r)
            requests.append((r, p))
        session.flush()
        for r, p in requests:
            if r.status in ("offered", "queued") and rng.random() < 0.8:
                status = "pending" if r.status == "offered" else rng.choice(["declined", "expired"])
                session.add(
                    Offer(
                        request_id=r.id or 0,
                        provider_id=p.id or 0,
                        caregiver_id=rng.choice([*caregivers.get(p.id or 0, []), None]),
                        status=status,
                        expires_at=now + timedelta(minutes=5),
                    )
                )
    with session_scope(write=False) as session:
        some = [p.id for p in providers[:10] if p.id is not None]
        pending = session.exec(select(Offer.id).where(Offer.status == "pending")).first()
        for ids, exclude in ((None, None), (some, None), (some, pending), (None, pending)):
            counted = capacity.load_holdings(session, ids, exclude_offer_id=exclude)
            reference = _one_by_one(session, ids, exclude)
            assert _usage(session, counted) == _usage(session, reference)
            assert sum(h.count for h in counted) == len(reference)
            assert len(counted) < len(reference)  # and it did group
