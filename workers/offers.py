"""Offer jobs."""

from __future__ import annotations

from dispatch.core.db import session_scope
from dispatch.core.outbox import claim
from dispatch.orders import offers


def expire_offer(*, offer_id: int, outbox_id: int | None = None) -> bool:
    """Expire an unanswered offer (scheduled at its deadline by RQ's scheduler)."""
    with session_scope() as session:
        if not claim(session, outbox_id):
            return False  # an earlier run already did it
        return offers.expire(session, offer_id=offer_id)


def expire_offers(*, offer_ids: list[int], outbox_id: int | None = None) -> int:
    """Expire the unanswered offers of one matcher run (they share a deadline); each is
    checked alone, so answered ones are left as they are. Returns how many expired."""
    with session_scope() as session:
        if not claim(session, outbox_id):
            return 0  # an earlier run already did it
        return sum(offers.expire(session, offer_id=offer_id) for offer_id in offer_ids)
