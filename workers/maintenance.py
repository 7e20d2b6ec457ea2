"""Cron jobs: the outbox relay and the sweeper, the real guarantee behind every wake-up."""

from __future__ import annotations

import logging
from datetime import timedelta

from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.jobs import COALESCE_MATCH, COALESCE_SMS, JobName, QueueName
from dispatch.core.outbox import hand_over_lost, mark_checked, stale_rows, wake
from dispatch.notify import service as notify_service
from dispatch.orders import sweep as sweeper

log = logging.getLogger(__name__)

RELAY_AFTER = timedelta(seconds=5)
# A stale row the relay looked at is looked at again this much later at the soonest: rows
# still waiting in a long queue do not take every run's look from a lost one behind them.
RELAY_RECHECK = timedelta(seconds=10)
# A send job holds a message `sending` for a second or two; this long means it died.
SENDING_STUCK_AFTER = timedelta(minutes=2)


def relay_outbox(limit: int = 500) -> int:
    """Hand to RQ the outbox rows whose fast path failed or was lost; how many.

    A row not done RELAY_AFTER after its commit is either waiting in RQ (a backlog) or lost
    (Redis flushed, the process killed before its fast path). Only the lost are handed over
    (outbox.hand_over_lost): enqueueing a waiting job's id again would queue it twice."""
    with session_scope(write=False) as session:
        rows = stale_rows(session, older_than=RELAY_AFTER, recheck_after=RELAY_RECHECK, limit=limit)
    if not rows:
        return 0
    handed = hand_over_lost(rows)
    with session_scope() as session:
        mark_checked(session, [row.id for row in rows if row.id is not None])
    if handed:
        log.warning("relayed %d outbox row(s) the fast path had not delivered", handed)
    if len(rows) > handed:
        log.info(
            "%d outbox row(s) older than %d s still in RQ's hands or their wake-up pending (a backlog)",
            len(rows) - handed,
            RELAY_AFTER.seconds,
        )
    return handed


def sweep() -> dict[str, int]:
    settings = get_settings()
    with session_scope() as session:
        result = sweeper.sweep(session, stale_after=timedelta(seconds=settings.stale_after_seconds))
    if result.stale_queued:
        # Queued requests nobody touched: their wake-up was lost. Force a matcher run.
        wake(COALESCE_MATCH, JobName.MATCH_PENDING, QueueName.MATCH, force=True)
    with session_scope() as session:
        stuck = notify_service.requeue_stuck(session, older_than=SENDING_STUCK_AFTER)
        unsent = notify_service.stale_due_count(
            session, older_than=timedelta(seconds=settings.stale_after_seconds)
        )
    if stuck or unsent:
        # Messages nobody is sending: a send job died or its wake-up was lost.
        wake(COALESCE_SMS, JobName.SEND_PENDING_SMS, QueueName.NOTIFY, force=True)
        log.info("sweep: %d message(s) stuck sending, %d due and unsent: sender woken", stuck, unsent)
    if result.escalated or result.expired or result.stale_queued:
        log.info("sweep: %s", result)
    return {"escalated": result.escalated, "expired": result.expired, "stale_queued": result.stale_queued}
