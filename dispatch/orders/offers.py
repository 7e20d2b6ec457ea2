"""Offers: made by the matcher, answered by the provider (accept/decline), or expired."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Table, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, mask_name, mask_phone
from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.errors import Conflict, Forbidden, NotFound
from dispatch.core.events import Emitted, lock_event_order
from dispatch.core.inserts import insert_returning_keys
from dispatch.core.jobs import COALESCE_MATCH, JobName, QueueName
from dispatch.core.outbox import add_job
from dispatch.elders.models import Elder
from dispatch.matching import capacity
from dispatch.matching.core import (
    CaregiverInfo,
    Decision,
    ProviderInfo,
    RequestInfo,
    Usage,
    overlaps,
    required_skills,
)
from dispatch.notify import rules as sms_rules
from dispatch.notify.models import OwedText
from dispatch.orders.lifecycle import RequestStatus, transition, transition_many
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from dispatch.orders.schemas import ElderSummary, OfferRead

# An expiry job that runs this early (clock jitter) still expires the offer.
_EXPIRY_TOLERANCE = timedelta(seconds=1)


def request_matching(session: Session, *, urgent: bool = False, request_ids: Sequence[int] = ()) -> None:
    """Owe a run of the batch matcher (one shared run serves every request waiting). With
    MATCH_MODE=per_request (the benchmark's naive reference), one job per request instead."""
    if request_ids and get_settings().match_mode == "per_request":
        for request_id in request_ids:
            add_job(session, JobName.MATCH_REQUEST, queue=QueueName.MATCH, request_id=request_id)
        return
    add_job(session, JobName.MATCH_PENDING, queue=QueueName.MATCH, coalesce=COALESCE_MATCH, urgent=urgent)


def make_offer(
    session: Session,
    request: ServiceRequest,
    *,
    provider_id: int,
    caregiver_id: int | None,
    distance_km: float | None = None,
    score: float | None = None,
    score_parts: dict[str, float] | None = None,
) -> Offer:
    """Offer one queued request to a provider (make_offers() for one); Conflict if the request
    changed since it was read."""
    assert request.id is not None
    decision = Decision(
        request.id, request.version, provider_id, caregiver_id, distance_km, score, score_parts or {}
    )
    made = make_offers(session, [(request, decision)])
    if not made:
        raise Conflict(f"request {request.id} was changed by someone else; reload and retry")
    offer = session.get(Offer, made[0].id)
    assert offer is not None
    return offer


class MadeOffer(NamedTuple):
    """An offer just written (write_offers): what the matcher goes on with. `session.get`
    reads the whole row."""

    id: int
    request_id: int
    provider_id: int
    caregiver_id: int | None
    expires_at: datetime


def make_offers(session: Session, chosen: Sequence[tuple[ServiceRequest, Decision]]) -> list[MadeOffer]:
    """Offer queued requests to the providers decided for them, with a deadline, all in
    `session` (prepare_offers() then write_offers()). A request changed since it was read gets
    no offer. Returns the offers made."""
    if not chosen:
        return []
    return write_offers(session, prepare_offers(session, chosen), [request for request, _ in chosen])


@dataclass
class PreparedOffers:
    """Offers decided for queued requests, built before the write transaction with everything
    writing them needs: the offers' rows (plain dicts: a SQLModel object each cost ~50 us of
    validation, for nothing the insert needs), the events' data but the offer's id, and the
    providers' texts. Keyed by request id."""

    expires_at: datetime
    rows: dict[int, dict[str, Any]]
    event_data: dict[int, dict[str, Any]]
    texts: list[OwedText]


def prepare_offers(session: Session, chosen: Sequence[tuple[ServiceRequest, Decision]]) -> PreparedOffers:
    """Build the offers of `chosen` and read what their texts need (elders, providers' phones),
    so that write_offers() has nothing left to read. The deadline is set here: the texts name it."""
    now = utcnow()
    expires_at = now + timedelta(seconds=get_settings().offer_ttl_seconds)
    expires_text = expires_at.isoformat()
    prepared = PreparedOffers(expires_at, {}, {}, [])
    for request, d in chosen:
        assert request.id is not None and d.provider_id is not None
        prepared.rows[request.id] = {  # every column of Offer but the id, as its defaults give them
            "request_id": request.id,
            "provider_id": d.provider_id,
            "caregiver_id": d.caregiver_id,
            "status": OfferStatus.PENDING.value,
            "created_at": now,
            "expires_at": expires_at,
            "responded_at": None,
            "reason": "",
            "distance_km": d.distance_km,
            "score": d.score,
            "score_parts": dict(d.score_parts),
            "manual": False,
        }
        # The event's data but the offer's id, which write_offers() puts first.
        prepared.event_data[request.id] = {
            "provider_id": d.provider_id,
            "caregiver_id": d.caregiver_id,
            "expires_at": expires_text,
            "distance_km": d.distance_km,
        }
    prepared.texts = sms_rules.offer_messages(
        session, [(request, d.provider_id or 0, expires_at) for request, d in chosen]
    )
    return prepared


# Core, not the ORM's flush (several times the cost per row, inside the write lock); the ids
# come back in the order of the rows (core/inserts.py).
_OFFERS: Table = Offer.__table__  # type: ignore[attr-defined]


def write_offers(
    session: Session, prepared: PreparedOffers, requests: Sequence[ServiceRequest]
) -> list[MadeOffer]:
    """Make the prepared offers of `requests` set-wise: the requests moved to offered in one
    compare-and-set (lifecycle.transition_many), the winners' offers in one insert, their
    events, audit rows and the texts prepared for them, and one shared expiry job at the common
    deadline instead of one per offer. A request changed since it was read gets no offer and no
    text. Returns the offers made (stored through Core, not the session: `session.get` reads
    them)."""
    made: dict[int | None, MadeOffer] = {}

    def insert_offers(winners: list[ServiceRequest]) -> None:
        rows = [prepared.rows[r.id or 0] for r in winners]
        ids = insert_returning_keys(session.connection(), _OFFERS, rows)
        for row, offer_id in zip(rows, ids, strict=True):
            made[row["request_id"]] = MadeOffer(
                offer_id, row["request_id"], row["provider_id"], row["caregiver_id"], row["expires_at"]
            )

    def texts(pairs: list[tuple[ServiceRequest, Emitted]]) -> list[OwedText]:
        won = {request.id for request, _ in pairs}
        return [m for m in prepared.texts if m.request_id in won]

    transition_many(
        session,
        requests,
        RequestStatus.OFFERED,
        data=lambda r: {"offer_id": made[r.id].id, **prepared.event_data[r.id or 0]},
        event_provider_id=lambda r: made[r.id].provider_id,
        before_events=insert_offers,
        texts=texts,
    )
    if made:
        offer_ids = [o.id for o in made.values()]
        add_job(
            session,
            JobName.EXPIRE_OFFERS,
            queue=QueueName.MATCH,
            run_at=prepared.expires_at,
            offer_ids=offer_ids,
        )
    return list(made.values())


def _set_offer_status(session: Session, offer: Offer, target: OfferStatus, reason: str = "") -> bool:
    """Compare-and-set an offer out of pending; False if it was no longer pending."""
    lock_event_order(session)  # before the offer's row: the one lock order (core/events.py)
    now = utcnow()
    result = session.execute(
        update(Offer)
        .where(col(Offer.id) == offer.id, col(Offer.status) == OfferStatus.PENDING)
        .values(status=target, responded_at=now, reason=reason)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    for key, value in (("status", target.value), ("responded_at", now), ("reason", reason)):
        set_committed_value(offer, key, value)
    return True


def get_offer(session: Session, *, principal: Principal, offer_id: int) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None or not can_see_offer(principal, offer):
        raise NotFound(f"offer {offer_id} not found")
    return offer


def can_see_offer(principal: Principal, offer: Offer) -> bool:
    if principal.role == Role.PROVIDER:
        return principal.provider_id == offer.provider_id
    return principal.role in (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


def accept(session: Session, *, principal: Principal, offer_id: int) -> ServiceRequest:
    """The provider takes the job. Of all offers of a request at most one is ever accepted:
    the offer's compare-and-set, the request's, and a unique index all stand guard."""
    offer = get_offer(session, principal=principal, offer_id=offer_id)
    if offer.status != OfferStatus.PENDING:
        raise Conflict(f"offer {offer_id} is {offer.status}, no longer pending")
    if offer.expires_at <= utcnow():
        raise Conflict(f"offer {offer_id} expired at {offer.expires_at.isoformat()}")
    request = session.get(ServiceRequest, offer.request_id)
    assert request is not None
    if request.status != RequestStatus.OFFERED or not _set_offer_status(session, offer, OfferStatus.ACCEPTED):
        raise Conflict(f"offer {offer_id} is no longer pending")
    # The caregiver may have been changed (direct_to_caregiver) after this offer was read.
    session.refresh(offer, attribute_names=["caregiver_id"])
    transition(
        session,
        request,
        RequestStatus.ASSIGNED,
        provider_id=offer.provider_id,
        caregiver_id=offer.caregiver_id,
        assigned_at=utcnow(),
        data={"offer_id": offer.id, "provider_id": offer.provider_id, "caregiver_id": offer.caregiver_id},
    )
    return request


def decline_for(session: Session, offer: Offer, reason: str) -> bool:
    """Decline a pending offer on the provider's behalf (the elder refused it) and send the
    request on; False if the offer was no longer pending."""
    if not _set_offer_status(session, offer, OfferStatus.DECLINED, reason):
        return False
    request = session.get(ServiceRequest, offer.request_id)
    assert request is not None
    _requeue(session, request, offer, "request.declined", reason)
    return True


def decline(session: Session, *, principal: Principal, offer_id: int, reason: str) -> ServiceRequest:
    offer = get_offer(session, principal=principal, offer_id=offer_id)
    if not _set_offer_status(session, offer, OfferStatus.DECLINED, reason):
        raise Conflict(f"offer {offer_id} is {offer.status}, no longer pending")
    request = session.get(ServiceRequest, offer.request_id)
    assert request is not None
    _requeue(session, request, offer, "request.declined", reason)
    return request


def expire(session: Session, *, offer_id: int) -> bool:
    """Expire an unanswered offer and send the request to the next candidate. Safe to run
    twice, and quiet when the offer was answered in the meantime."""
    offer = session.get(Offer, offer_id)
    if offer is None or offer.status != OfferStatus.PENDING:
        return False
    if offer.expires_at > utcnow() + _EXPIRY_TOLERANCE:
        # Too early (a re-delivered job): owe the expiry again at the right time.
        add_job(
            session, JobName.EXPIRE_OFFER, queue=QueueName.MATCH, run_at=offer.expires_at, offer_id=offer.id
        )
        return False
    if not _set_offer_status(session, offer, OfferStatus.EXPIRED, "no answer in time"):
        return False
    request = session.get(ServiceRequest, offer.request_id)
    assert request is not None
    _requeue(session, request, offer, "request.expired", "no answer in time")
    return True


def _requeue(session: Session, request: ServiceRequest, offer: Offer, event_type: str, reason: str) -> None:
    if request.status != RequestStatus.OFFERED:
        return  # already escalated, cancelled or dispatched by hand: nothing to send on
    transition(
        session,
        request,
        RequestStatus.QUEUED,
        event_type=event_type,
        event_provider_id=offer.provider_id,
        data={"offer_id": offer.id, "provider_id": offer.provider_id, "reason": reason},
    )
    assert request.id is not None
    request_matching(session, urgent=request.priority == "urgent", request_ids=[request.id])


def withdraw_pending(session: Session, *, request_id: int, reason: str) -> list[Offer]:
    """Withdraw the pending offer(s) of a request that was placed or closed some other way."""
    offers = session.exec(
        select(Offer).where(Offer.request_id == request_id, col(Offer.status) == OfferStatus.PENDING)
    ).all()
    return [o for o in offers if _set_offer_status(session, o, OfferStatus.WITHDRAWN, reason)]


def direct_to_caregiver(session: Session, *, principal: Principal, offer_id: int, caregiver_id: int) -> Offer:
    """The provider names another of its caregivers for a pending offer, before accepting it.
    The caregiver must have the skills asked, be on shift in the window, and have a job to spare."""
    offer = get_offer(session, principal=principal, offer_id=offer_id)
    if principal.role != Role.PROVIDER:
        raise NotFound(f"offer {offer_id} not found")
    if principal.caregiver_id is not None and principal.caregiver_id != caregiver_id:
        raise Forbidden("an account bound to a caregiver may only direct offers to that caregiver")
    if offer.status != OfferStatus.PENDING or offer.expires_at <= utcnow():
        raise Conflict(f"offer {offer_id} is {offer.status}, no longer pending")
    capacity.lock_providers(session, [offer.provider_id])
    (provider,) = capacity.load_providers(session, [offer.provider_id])
    caregiver = next((c for c in provider.caregivers if c.id == caregiver_id), None)
    if caregiver is None:
        raise NotFound(
            f"caregiver {caregiver_id} not found among provider {offer.provider_id}'s active caregivers"
        )
    request = session.get(ServiceRequest, offer.request_id)
    elder = session.get(Elder, request.elder_id) if request else None
    assert request is not None and elder is not None
    info = capacity.request_info(request, elder.lat, elder.lon, set())
    _check_caregiver(session, provider, caregiver, info, offer)
    previous = offer.caregiver_id
    result = session.execute(
        update(Offer)
        .where(col(Offer.id) == offer.id, col(Offer.status) == OfferStatus.PENDING)
        .values(caregiver_id=caregiver_id)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict(f"offer {offer_id} is no longer pending")
    set_committed_value(offer, "caregiver_id", caregiver_id)
    # Not a status change, so not an event (API.md's event types are fixed); the change of who
    # goes to the elder's door is in the elder's audit log.
    audit.record_change(
        session,
        elder_id=request.elder_id,
        action="offer.caregiver",
        what=f"offer {offer.id}: caregiver {previous} -> {caregiver_id}",
    )
    return offer


def _check_caregiver(
    session: Session, provider: ProviderInfo, caregiver: CaregiverInfo, info: RequestInfo, offer: Offer
) -> None:
    missing = required_skills(info) - caregiver.skills
    if missing:
        raise Conflict(f"caregiver {caregiver.id} lacks the skills asked: {', '.join(sorted(missing))}")
    shift = (caregiver.shift_start, caregiver.shift_end)
    if shift[0] and shift[1] and not overlaps(shift[0], shift[1], info.window_start, info.window_end):
        raise Conflict(
            f"caregiver {caregiver.id} is not on shift ({shift[0]}-{shift[1]}) in the request's window"
        )
    holdings = [
        h
        for h in capacity.load_holdings(session, [provider.id], exclude_offer_id=offer.id)
        if h.caregiver_id == caregiver.id
    ]
    usage = Usage({provider.id: provider}, holdings)
    if usage.caregiver_jobs[caregiver.id] >= caregiver.max_jobs:
        raise Conflict(f"caregiver {caregiver.id} already has {caregiver.max_jobs} jobs at once")


def list_offers(
    session: Session, *, principal: Principal, status: OfferStatus | None, limit: int, offset: int
) -> Sequence[Offer]:
    stmt = select(Offer)
    if principal.role == Role.PROVIDER:
        stmt = stmt.where(Offer.provider_id == principal.provider_id)
    if status is not None:
        stmt = stmt.where(Offer.status == status)
    return session.exec(stmt.order_by(col(Offer.id).desc()).offset(offset).limit(limit)).all()


def offer_reads(session: Session, offers: Sequence[Offer]) -> list[OfferRead]:
    request_ids = {o.request_id for o in offers}
    rows = session.exec(
        select(ServiceRequest, Elder)
        .join(Elder, col(Elder.id) == ServiceRequest.elder_id)
        .where(col(ServiceRequest.id).in_(request_ids))
    ).all()
    by_request = {r.id: (r, e) for r, e in rows}
    out = []
    for o in offers:
        request, elder = by_request[o.request_id]
        assert o.id is not None
        out.append(
            OfferRead(
                id=o.id,
                request_id=o.request_id,
                provider_id=o.provider_id,
                caregiver_id=o.caregiver_id,
                status=OfferStatus(o.status),
                expires_at=o.expires_at,
                created_at=o.created_at,
                kind=request.kind,  # type: ignore[arg-type]
                window_start=request.window_start,
                window_end=request.window_end,
                distance_km=o.distance_km,
                score=o.score,
                score_parts={k: float(v) for k, v in o.score_parts.items()},
                reason=o.reason,
                elder=ElderSummary(
                    name=mask_name(elder.name),
                    township=elder.township,
                    address=elder.address,
                    phone=mask_phone(elder.phone),
                ),
            )
        )
    return out
