"""Matching glue: read a snapshot of the waiting requests, decide with the pure core
(outside any write lock), read what applying the decisions needs (the requests, the offers and
their texts: prepare_apply), then apply them in one short write transaction (apply_prepared),
each re-checked against the request's version (its compare-and-set) and the providers'
capacity at that moment.

The snapshot is a fixed, small number of queries whatever the batch size (requests with their
elders; declines; refusals; who served these elders before; providers with caregivers;
capacity in use; providers' records, cached): the matcher's cost per batch must not grow with
one query per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial

from sqlalchemy import case, func, or_, select
from sqlmodel import Session, col

from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.errors import Conflict
from dispatch.core.outbox import OutboxJob
from dispatch.elders.models import Elder
from dispatch.matching import capacity, records, refusals
from dispatch.matching.batch import decide_batch
from dispatch.matching.capacity import RequestFields, RequestRow, request_info
from dispatch.matching.core import WAIT, Decision, Holding, Prices, ProviderInfo, RequestInfo, Usage
from dispatch.matching.scoring import Weights
from dispatch.orders import offers
from dispatch.orders.lifecycle import RequestStatus, transition
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest

log = logging.getLogger(__name__)

__all__ = [
    "Applied",
    "Prepared",
    "Snapshot",
    "apply_decisions",
    "apply_prepared",
    "decide",
    "load_snapshot",
    "prepare_apply",
    "request_info",
    "weights",
]

BATCH_LIMIT = 2000
# Continuity looks back this far for who served an elder.
CONTINUITY_DAYS = 90
Matcher = Callable[[Sequence[RequestInfo], Sequence[ProviderInfo], Sequence[Holding]], list[Decision]]


@dataclass
class Snapshot:
    requests: list[RequestInfo]
    providers: list[ProviderInfo]
    holdings: list[Holding]
    max_outbox_id: int = 0
    # False: the capacity in use as this process last knew it (capacity.snapshot_holdings).
    holdings_fresh: bool = True


@dataclass
class Applied:
    offered: int = 0
    escalated: int = 0
    waiting: int = 0
    skipped: int = 0
    retry: bool = False
    offer_ids: list[int] = field(default_factory=list)
    # The capacity of the batch's providers as read under the write lock, and the offers made:
    # what the matcher knows of them once this commits (capacity.note_applied).
    provider_ids: set[int] = field(default_factory=set)
    holdings_read: list[Holding] = field(default_factory=list)
    holdings_made: list[Holding] = field(default_factory=list)


def weights() -> Weights:
    """The score weights from the settings (MATCH_WEIGHT_*)."""
    s = get_settings()
    return Weights(
        distance=s.match_weight_distance,
        load=s.match_weight_load,
        acceptance=s.match_weight_acceptance,
        completion=s.match_weight_completion,
        rating=s.match_weight_rating,
        no_show=s.match_weight_no_show,
        continuity=s.match_weight_continuity,
        fallback_km=s.match_fallback_penalty_km,
    )


def load_snapshot(
    session: Session,
    *,
    limit: int = BATCH_LIMIT,
    request_ids: Collection[int] | None = None,
    holdings_max_age: float = 0.0,
) -> Snapshot:
    """The queued requests (urgent first, then oldest), or only those of `request_ids`, and
    everything the matcher needs; the capacity in use as this process knew it up to
    `holdings_max_age` seconds ago (capacity.snapshot_holdings), else read now."""
    max_outbox_id = session.scalar(select(func.max(OutboxJob.id))) or 0
    urgent_first = case(
        (or_(col(ServiceRequest.priority) == "urgent", col(ServiceRequest.kind) == "emergency"), 0), else_=1
    )
    stmt = (
        select(*capacity.REQUEST_COLUMNS, col(Elder.lat), col(Elder.lon))
        .join(Elder, col(Elder.id) == ServiceRequest.elder_id)
        .where(col(ServiceRequest.status) == RequestStatus.QUEUED)
    )
    if request_ids is not None:
        stmt = stmt.where(col(ServiceRequest.id).in_(list(request_ids)))
    rows = session.execute(
        stmt.order_by(urgent_first, col(ServiceRequest.created_at), col(ServiceRequest.id)).limit(limit)
    ).all()
    if not rows:
        return Snapshot([], [], [], max_outbox_id)
    # Plain rows, not ORM objects: the decision only reads them (apply_decisions reads what it changes).
    requests = request_infos(session, [(RequestRow._make(row[:-2]), row[-2], row[-1]) for row in rows])
    recs = records.load_records(session, max_age_seconds=get_settings().match_record_cache_seconds)
    providers = capacity.load_providers(session, records=recs)
    holdings, fresh = capacity.snapshot_holdings(session, max_age_seconds=holdings_max_age)
    return Snapshot(requests, providers, holdings, max_outbox_id, fresh)


# Verdicts that no capacity in use changes: with any other verdict than an offer, a snapshot
# decided on the capacity as last known is decided again on the capacity read afresh.
_CAPACITY_FREE_REASONS = frozenset({"no_provider_in_range", "all_refused", "all_declined"})


def needs_fresh_holdings(snapshot: Snapshot, decisions: Sequence[Decision]) -> bool:
    """Whether `decisions` rest on capacity as last known and include a verdict it could have
    changed (waiting, full, no caregiver free): a request is never escalated or kept waiting on
    a unit that may have come free since."""
    return not snapshot.holdings_fresh and any(
        d.provider_id is None and d.reason not in _CAPACITY_FREE_REASONS for d in decisions
    )


def with_fresh_holdings(session: Session, snapshot: Snapshot) -> Snapshot:
    """The snapshot with the capacity in use read now."""
    holdings, _ = capacity.snapshot_holdings(session, max_age_seconds=0.0)
    return replace(snapshot, holdings=holdings, holdings_fresh=True)


def request_infos(session: Session, rows: Sequence[tuple[RequestFields, float, float]]) -> list[RequestInfo]:
    """Requests with what they carry from history (declines, refusals, continuity): three
    queries for the whole batch."""
    ids = [r.id for r, _, _ in rows if r.id is not None]
    elder_ids = {r.elder_id for r, _, _ in rows}
    excluded = declined_by(session, ids)
    refused = refusals.refused_by(session, elder_ids)
    served, served_cg = served_before(session, elder_ids)
    return [
        request_info(
            r,
            lat,
            lon,
            excluded.get(r.id or 0, set()),
            refused=refused.get(r.elder_id, set()),
            served_by=served.get(r.elder_id, set()),
            served_by_caregivers=served_cg.get(r.elder_id, set()),
        )
        for r, lat, lon in rows
    ]


def declined_by(session: Session, request_ids: Collection[int]) -> dict[int, set[int]]:
    """Providers that declined each request or let its offer expire."""
    out: dict[int, set[int]] = {}
    if not request_ids:
        return out
    for request_id, provider_id in session.execute(
        select(col(Offer.request_id), col(Offer.provider_id)).where(
            col(Offer.request_id).in_(list(request_ids)),
            col(Offer.status).in_([OfferStatus.DECLINED, OfferStatus.EXPIRED]),
        )
    ):
        out.setdefault(request_id, set()).add(provider_id)
    return out


def served_before(
    session: Session, elder_ids: Collection[int]
) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """(providers, caregivers) that completed a request of each elder in the last CONTINUITY_DAYS."""
    providers: dict[int, set[int]] = {}
    caregivers: dict[int, set[int]] = {}
    if not elder_ids:
        return providers, caregivers
    since = utcnow() - timedelta(days=CONTINUITY_DAYS)
    for elder_id, provider_id, caregiver_id in session.execute(
        select(
            col(ServiceRequest.elder_id), col(ServiceRequest.provider_id), col(ServiceRequest.caregiver_id)
        )
        .where(
            col(ServiceRequest.elder_id).in_(list(elder_ids)),
            col(ServiceRequest.status) == RequestStatus.COMPLETED,
            col(ServiceRequest.closed_at) >= since,
        )
        .distinct()
    ):
        if provider_id is not None:
            providers.setdefault(elder_id, set()).add(provider_id)
        if caregiver_id is not None:
            caregivers.setdefault(elder_id, set()).add(caregiver_id)
    return providers, caregivers


def decide(
    snapshot: Snapshot, matcher: Matcher | None = None, *, prices: Prices | None = None
) -> list[Decision]:
    """The platform's decisions for a snapshot: the batch assignment with the settings' weights
    and the current capacity prices (dispatch/matching/forecast.py)."""
    if not snapshot.requests:
        return []
    chosen = matcher or partial(decide_batch, weights=weights(), prices=prices)
    return chosen(snapshot.requests, snapshot.providers, snapshot.holdings)


@dataclass
class Prepared:
    """A batch's decisions with what applying them needs, read before the write transaction:
    the requests still as the snapshot saw them, and the offers to make, built with their texts."""

    snapshot: Snapshot
    decisions: Sequence[Decision]
    requests: dict[int, ServiceRequest]
    offers: offers.PreparedOffers
    skipped: int = 0  # changed since the snapshot already when read here


def prepare_apply(session: Session, snapshot: Snapshot, decisions: Sequence[Decision]) -> Prepared:
    """Read what applying `decisions` needs (the requests, the offers' texts), outside the write
    transaction: apply_prepared() then holds it for compare-and-sets and inserts alone. A request
    changed after this read loses its compare-and-set there, as one changed before it is left
    out here."""
    ids = [d.request_id for d in decisions]
    current = (
        {r.id: r for r in session.scalars(select(ServiceRequest).where(col(ServiceRequest.id).in_(ids)))}
        if ids
        else {}
    )
    requests: dict[int, ServiceRequest] = {}
    skipped = 0
    for d in decisions:
        request = current.get(d.request_id)
        if request is None or request.status != RequestStatus.QUEUED or request.version != d.version:
            skipped += 1  # answered, cancelled or matched elsewhere since the snapshot
        else:
            requests[d.request_id] = request
    to_offer = [
        (requests[d.request_id], d)
        for d in decisions
        if d.request_id in requests and d.provider_id is not None
    ]
    return Prepared(snapshot, decisions, requests, offers.prepare_offers(session, to_offer), skipped)


def apply_decisions(session: Session, snapshot: Snapshot, decisions: Sequence[Decision]) -> Applied:
    """Make the offers and escalations decided on the snapshot, where they still hold, all in
    `session` (prepare_apply() then apply_prepared())."""
    return apply_prepared(session, prepare_apply(session, snapshot, decisions))


def apply_prepared(session: Session, prepared: Prepared) -> Applied:
    """Make the offers and escalations prepared, where they still hold: each request on the
    version the snapshot saw (its compare-and-set), each offer within the capacity its provider
    and caregiver have left now (read here, under row locks on PostgreSQL)."""
    applied = Applied(skipped=prepared.skipped)
    if not prepared.decisions:
        return applied
    live = [d for d in prepared.decisions if d.request_id in prepared.requests]
    provider_ids = {d.provider_id for d in live if d.provider_id is not None}
    capacity.lock_providers(session, provider_ids)
    providers = {p.id: p for p in prepared.snapshot.providers if p.id in provider_ids}
    # No provider chosen (all escalated or waiting): nothing to re-check, and the capacity read
    # would still walk every open job.
    holdings = capacity.load_holdings(session, provider_ids) if provider_ids else []
    usage = Usage(providers, holdings)
    applied.provider_ids, applied.holdings_read = provider_ids, holdings
    by_id = {r.id: r for r in prepared.snapshot.requests}
    chosen: list[ServiceRequest] = []
    for d in live:
        request = prepared.requests[d.request_id]
        if d.reason == WAIT:
            applied.waiting += 1  # all full of units pending offers hold: stays queued for now
            continue
        if d.provider_id is None:
            if _escalate(session, request, d.reason):
                applied.escalated += 1
            else:
                applied.skipped += 1
            continue
        provider, info = providers[d.provider_id], by_id[d.request_id]
        if usage.left(provider, info) <= 0 or not _caregiver_free(provider, d.caregiver_id, usage):
            applied.skipped += 1  # capacity taken since the snapshot: try again next run
            applied.retry = True
            continue
        usage.take(provider, info, d.caregiver_id)
        chosen.append(request)
    made = offers.write_offers(session, prepared.offers, chosen)  # one set-wise write for the batch
    applied.offered = len(made)
    applied.offer_ids = [o.id for o in made]
    applied.holdings_made = [_made_holding(o, by_id[o.request_id]) for o in made]
    if len(made) < len(chosen):
        applied.skipped += len(chosen) - len(made)
        applied.retry = True
    if applied.retry:
        offers.request_matching(session)
    return applied


def _made_holding(offer: offers.MadeOffer, request: RequestInfo) -> Holding:
    return Holding(
        offer.provider_id, offer.caregiver_id, request.kind, request.window_start, request.slot, "pending"
    )


def _escalate(session: Session, request: ServiceRequest, reason: str | None) -> bool:
    """Escalate a request nobody can take; False if it changed since it was read."""
    try:
        transition(
            session, request, RequestStatus.ESCALATED, escalation_reason=reason, data={"reason": reason}
        )
    except Conflict:
        return False  # answered, cancelled or matched elsewhere since it was read
    return True


def _caregiver_free(provider: ProviderInfo, caregiver_id: int | None, usage: Usage) -> bool:
    if caregiver_id is None:
        return True
    caregiver = next((c for c in provider.caregivers if c.id == caregiver_id), None)
    return caregiver is not None and usage.caregiver_jobs[caregiver_id] < caregiver.max_jobs
