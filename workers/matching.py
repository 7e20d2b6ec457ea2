"""The batch matcher job, and the capacity prices' refresh (a maintenance cron job)."""

from __future__ import annotations

import logging
import time
from functools import partial

import redis
from sqlmodel import Session

from dispatch.core import faults
from dispatch.core.config import get_settings
from dispatch.core.db import get_engine, session_scope
from dispatch.core.jobs import COALESCE_MATCH
from dispatch.core.outbox import HURRY_KEY, claim, claim_coalesced, clear_wake
from dispatch.core.redis import get_redis
from dispatch.matching import capacity, forecast
from dispatch.matching import service as matching_service
from dispatch.matching.core import Decision
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


def _refresh_known_capacity(max_age: float, window: float) -> float:
    """Read every provider's capacity in use again now if what this worker knows of it would
    be too old by the time the run decides: while the batch window gathers requests rather
    than in the run (its latency is every request's). With nothing known (the first run, or
    an apply found capacity taken), the run's snapshot reads it. Returns the CPU seconds."""
    age = capacity.known_age(get_engine(write=False))
    if max_age <= 0 or age is None or age < max_age - window:
        return 0.0
    started = time.process_time()
    with session_scope(write=False) as session:
        capacity.snapshot_holdings(session, max_age_seconds=0.0)
    return time.process_time() - started


def match_pending() -> dict[str, int]:
    """Match every queued request in one batch. Safe to run twice and concurrently: each
    decision is applied only if the request is still at the version the snapshot saw."""
    conn = get_redis()
    settings = get_settings()
    max_age = settings.match_holdings_cache_seconds
    refresh_cpu = _refresh_known_capacity(max_age, settings.batch_window_seconds)
    _wait_for_batch_window(conn, settings.batch_window_seconds)
    # From here on, a newly committed request queues the next run instead of relying on this one.
    clear_wake(COALESCE_MATCH, conn)
    prices = forecast.read_prices(conn, max_age_seconds=3 * settings.match_price_refresh_seconds)
    started = time.process_time() - refresh_cpu
    with session_scope(write=False) as session:
        snapshot = matching_service.load_snapshot(session, holdings_max_age=max_age)
    decide = partial(matching_service.decide, prices=prices if settings.match_forecast_days else None)
    decisions = decide(snapshot)
    if matching_service.needs_fresh_holdings(snapshot, decisions):
        with session_scope(write=False) as session:
            snapshot = matching_service.with_fresh_holdings(session, snapshot)
        decisions = decide(snapshot)
    cpu_ms = (time.process_time() - started) * 1000  # what the log reports (bench/_phases.py)
    prepared = prepare(snapshot, decisions)
    faults.point("match.before_apply")
    with session_scope() as session:
        applied = apply_batch(session, prepared)
    # Committed: what this run read under the lock and made is what the next snapshot knows
    # (known per engine that snapshots are read through).
    reader = get_engine(write=False)
    if applied.retry:
        capacity.forget_holdings(reader)  # capacity was taken meanwhile: read it all next run
    else:
        capacity.note_applied(reader, applied.provider_ids, applied.holdings_read, applied.holdings_made)
    log.info(
        "matched %d request(s): %d offered, %d escalated, %d waiting, %d skipped (%.1f ms cpu)",
        len(snapshot.requests),
        applied.offered,
        applied.escalated,
        applied.waiting,
        applied.skipped,
        cpu_ms,
    )
    return {
        "requests": len(snapshot.requests),
        "offered": applied.offered,
        "escalated": applied.escalated,
        "waiting": applied.waiting,
        "skipped": applied.skipped,
        "cpu_us": int(cpu_ms * 1000),
    }


def prepare(snapshot: matching_service.Snapshot, decisions: list[Decision]) -> matching_service.Prepared:
    """Everything the batch's write transaction needs, read before it (in a read transaction of
    its own, so that a request changed while the matcher decided is left out already; with no
    decisions it reads nothing)."""
    with session_scope(write=False) as session:
        return matching_service.prepare_apply(session, snapshot, decisions)


def apply_batch(session: Session, prepared: matching_service.Prepared) -> matching_service.Applied:
    """The batch's write transaction, kept to compare-and-sets, the capacity re-check and inserts:
    every intake and accept of the district waits for it on SQLite (bench/match_cpu.py times it)."""
    snapshot = prepared.snapshot
    claim_coalesced(session, COALESCE_MATCH, up_to=snapshot.max_outbox_id)
    applied = matching_service.apply_prepared(session, prepared)
    if len(snapshot.requests) >= matching_service.BATCH_LIMIT:
        offers.request_matching(session)  # more are waiting than one batch takes
    return applied


def match_request(*, request_id: int, outbox_id: int | None = None) -> str:
    """Match one request on its own: the naive reference of bench/load.py (MATCH_MODE=per_request),
    one job per request and no batch window. The same snapshot, decision and guarded apply as the
    batch, so it is as safe to run twice; only the cost per request differs."""
    started = time.process_time()
    with session_scope(write=False) as session:
        snapshot = matching_service.load_snapshot(session, request_ids=[request_id])
    decisions = matching_service.decide(snapshot)
    prepared = prepare(snapshot, decisions)
    with session_scope() as session:
        if not claim(session, outbox_id):
            return "done before"
        applied = matching_service.apply_prepared(session, prepared)
    log.info(
        "matched request %d alone: %d offered, %d escalated (%.1f ms cpu)",
        request_id,
        applied.offered,
        applied.escalated,
        (time.process_time() - started) * 1000,
    )
    return "offered" if applied.offered else "escalated" if applied.escalated else "left queued"


def refresh_prices() -> int:
    """Recompute the capacity prices from the forecast and store them for the matcher."""
    if not get_settings().match_forecast_days:
        return 0
    started = time.process_time()
    with session_scope(write=False) as session:
        prices = forecast.compute_prices(session, matching_service.weights())
    forecast.store_prices(get_redis(), prices)
    log.info(
        "capacity prices: %d pool(s) priced (%.0f ms cpu)",
        len(prices),
        (time.process_time() - started) * 1000,
    )
    return len(prices)
