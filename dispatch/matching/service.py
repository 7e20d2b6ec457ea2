"""Matching glue: read a snapshot of the waiting requests, decide with the pure core
(outside any write lock), then apply the decisions in one write transaction, each re-checked
against the request's version and the providers' capacity at that moment."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlmodel import Session, col

from dispatch.core.outbox import OutboxJob
from dispatch.elders.models import Elder
from dispatch.matching import capacity
from dispatch.matching.core import Decision, Holding, ProviderInfo, RequestInfo, Usage, decide_greedy
from dispatch.orders import offers
from dispatch.orders.lifecycle import RequestStatus, transition
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest

log = logging.getLogger(__name__)

BATCH_LIMIT = 2000
Matcher = Callable[[Sequence[RequestInfo], Sequence[ProviderInfo], Sequence[Holding]], list[Decision]]


@dataclass
class Snapshot:
    requests: list[RequestInfo]
    providers: list[ProviderInfo]
    holdings: list[Holding]
    max_outbox_id: int = 0


@dataclass
class Applied:
    offered: int = 0
    escalated: int = 0
    skipped: int = 0
    retry: bool = False
    offer_ids: list[int] = field(default_factory=list)


def load_snapshot(session: Session, *, limit: int = BATCH_LIMIT) -> Snapshot:
    max_outbox_id = session.scalar(select(func.max(OutboxJob.id))) or 0
    rows = session.execute(
        select(ServiceRequest, col(Elder.lat), col(Elder.lon))
        .join(Elder, col(Elder.id) == ServiceRequest.elder_id)
        .where(col(ServiceRequest.status) == RequestStatus.QUEUED)
        .order_by(col(ServiceRequest.created_at))
        .limit(limit)
    ).all()
    if not rows:
        return Snapshot([], [], [], max_outbox_id)
    ids = [r.id for r, _, _ in rows]
    excluded: dict[int, set[int]] = {}
    for request_id, provider_id in session.execute(
        select(col(Offer.request_id), col(Offer.provider_id)).where(
            col(Offer.request_id).in_(ids),
            col(Offer.status).in_([OfferStatus.DECLINED, OfferStatus.EXPIRED]),
        )
    ):
        excluded.setdefault(request_id, set()).add(provider_id)
    requests = [request_info(r, lat, lon, excluded.get(r.id or 0, set())) for r, lat, lon in rows]
    return Snapshot(
        requests, capacity.load_providers(session), capacity.load_holdings(session), max_outbox_id
    )


def request_info(r: ServiceRequest, lat: float, lon: float, excluded: set[int]) -> RequestInfo:
    assert r.id is not None
    return RequestInfo(
        id=r.id,
        version=r.version,
        kind=r.kind,
        priority="urgent" if r.kind == "emergency" else r.priority,
        created_at=r.created_at,
        lat=lat,
        lon=lon,
        window_start=r.window_start,
        window_end=r.window_end,
        slot=r.details.get("slot"),
        delivery=bool(r.details.get("delivery")),
        skills=frozenset(r.details.get("skills") or ()),
        excluded=frozenset(excluded),
    )


def decide(snapshot: Snapshot, matcher: Matcher = decide_greedy) -> list[Decision]:
    if not snapshot.requests:
        return []
    return matcher(snapshot.requests, snapshot.providers, snapshot.holdings)


def apply_decisions(session: Session, snapshot: Snapshot, decisions: Sequence[Decision]) -> Applied:
    """Make the offers and escalations decided on the snapshot, where they still hold."""
    applied = Applied()
    provider_ids = {d.provider_id for d in decisions if d.provider_id is not None}
    capacity.lock_providers(session, provider_ids)
    providers = {p.id: p for p in snapshot.providers if p.id in provider_ids}
    usage = Usage(providers, capacity.load_holdings(session, provider_ids))
    by_id = {r.id: r for r in snapshot.requests}
    for d in decisions:
        request = session.get(ServiceRequest, d.request_id)
        if request is None or request.status != RequestStatus.QUEUED or request.version != d.version:
            applied.skipped += 1  # answered, cancelled or matched elsewhere since the snapshot
            continue
        if d.provider_id is None:
            transition(
                session,
                request,
                RequestStatus.ESCALATED,
                escalation_reason=d.reason,
                data={"reason": d.reason},
            )
            applied.escalated += 1
            continue
        provider, info = providers[d.provider_id], by_id[d.request_id]
        if usage.left(provider, info) <= 0:
            applied.skipped += 1  # capacity taken since the snapshot: try again next run
            applied.retry = True
            continue
        usage.take(provider, info, d.caregiver_id)
        offer = offers.make_offer(
            session,
            request,
            provider_id=d.provider_id,
            caregiver_id=d.caregiver_id,
            distance_km=d.distance_km,
            score=d.score,
            score_parts=d.score_parts,
        )
        applied.offered += 1
        applied.offer_ids.append(offer.id or 0)
    if applied.retry:
        offers.request_matching(session)
    return applied
