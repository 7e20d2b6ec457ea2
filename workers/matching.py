"""The batch matcher job."""

from __future__ import annotations

import logging
import time

import redis

from dispatch.core import faults
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.jobs import COALESCE_MATCH
from dispatch.core.outbox import HURRY_KEY, claim_coalesced, clear_wake
from dispatch.core.redis import get_redis
from dispatch.matching import service as matching_service
from dispatch.orders import offers

log = logging.getLogger(__name__)

LAST_RUN_KEY = "eldercare:match:last-run"


def _wait_for_batch_window(conn: redis.Redis, window: float) -> None:
    """Let requests that arrive together be matched together: at most one run per window.
    An urgent request cuts the wait short (it pushes to the hurry list)."""
    last = conn.get(LAST_RUN_KEY)
    wait = window - (time.time() - float(last)) if last else 0.0
    if wait > 0.005:
        conn.blpop([HURRY_KEY.format(COALESCE_MATCH)], timeout=wait)
    conn.delete(HURRY_KEY.format(COALESCE_MATCH))
    conn.set(LAST_RUN_KEY, repr(time.time()), ex=3600)


def match_pending() -> dict[str, int]:
    """Match every queued request in one batch. Safe to run twice and concurrently: each
    decision is applied only if the request is still at the version the snapshot saw."""
    conn = get_redis()
    _wait_for_batch_window(conn, get_settings().batch_window_seconds)
    # From here on, a newly committed request queues the next run instead of relying on this one.
    clear_wake(COALESCE_MATCH, conn)
    started = time.process_time()
    with session_scope(write=False) as session:
        snapshot = matching_service.load_snapshot(session)
    decisions = matching_service.decide(snapshot)
    cpu_ms = (time.process_time() - started) * 1000
    faults.point("match.before_apply")
    with session_scope() as session:
        claim_coalesced(session, COALESCE_MATCH, up_to=snapshot.max_outbox_id)
        applied = matching_service.apply_decisions(session, snapshot, decisions)
        if len(snapshot.requests) >= matching_service.BATCH_LIMIT:
            offers.request_matching(session)  # more are waiting than one batch takes
    log.info(
        "matched %d request(s): %d offered, %d escalated, %d skipped (decide %.1f ms cpu)",
        len(snapshot.requests),
        applied.offered,
        applied.escalated,
        applied.skipped,
        cpu_ms,
    )
    return {
        "requests": len(snapshot.requests),
        "offered": applied.offered,
        "escalated": applied.escalated,
        "skipped": applied.skipped,
        "cpu_us": int(cpu_ms * 1000),
    }
