"""The sweeper's checks: SQL is the truth, so whatever Redis lost is found here again.

- a request not placed by its deadline goes in front of the operators ("not placed in time"),
  even while candidates remain, so a chain of unanswered offers never leaves an elder waiting;
- a pending offer well past its deadline is expired here if its scheduled job was lost;
- a queued request nobody has touched for a while means the matcher's wake-up was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from dispatch.core.clock import utcnow
from dispatch.core.events import lock_event_order
from dispatch.orders import offers
from dispatch.orders.lifecycle import UNPLACED_STATUSES, RequestStatus, transition
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest

NOT_PLACED_IN_TIME = "not_placed_in_time"
OFFER_GRACE = timedelta(seconds=5)
SWEEP_LIMIT = 500


@dataclass
class SweepResult:
    escalated: int = 0
    expired: int = 0
    stale_queued: int = 0


def escalate_overdue(session: Session) -> int:
    """Put every unplaced request past its deadline in front of the operators."""
    lock_event_order(session)  # read after it: what is read stays so until the commit (no 409)
    overdue = session.exec(
        select(ServiceRequest)
        .where(col(ServiceRequest.status).in_(list(UNPLACED_STATUSES)), col(ServiceRequest.due_at) < utcnow())
        .order_by(col(ServiceRequest.due_at))
        .limit(SWEEP_LIMIT)
    ).all()
    for request in overdue:
        assert request.id is not None
        offers.withdraw_pending(session, request_id=request.id, reason=NOT_PLACED_IN_TIME)
        transition(
            session,
            request,
            RequestStatus.ESCALATED,
            escalation_reason=NOT_PLACED_IN_TIME,
            data={"reason": NOT_PLACED_IN_TIME},
        )
    return len(overdue)


def expire_overdue_offers(session: Session) -> int:
    """Expire pending offers whose scheduled expiry job never ran (a flushed Redis)."""
    ids = session.exec(
        select(Offer.id)
        .where(col(Offer.status) == OfferStatus.PENDING, col(Offer.expires_at) < utcnow() - OFFER_GRACE)
        .limit(SWEEP_LIMIT)
    ).all()
    return sum(1 for offer_id in ids if offer_id is not None and offers.expire(session, offer_id=offer_id))


def count_stale_queued(session: Session, *, stale_after: timedelta) -> int:
    stmt = (
        select(ServiceRequest.id)
        .where(
            col(ServiceRequest.status) == RequestStatus.QUEUED,
            col(ServiceRequest.updated_at) < utcnow() - stale_after,
        )
        .limit(SWEEP_LIMIT)
    )
    return len(session.exec(stmt).all())


def sweep(session: Session, *, stale_after: timedelta) -> SweepResult:
    return SweepResult(
        escalated=escalate_overdue(session),
        expired=expire_overdue_offers(session),
        stale_queued=count_stale_queued(session, stale_after=stale_after),
    )
