"""The statistics rollup job (`rq cron`, maintenance queue): roll up the days that are due."""

from __future__ import annotations

import logging

from dispatch.core.db import session_scope
from dispatch.stats import rollup

log = logging.getLogger(__name__)


def refresh_stats() -> int:
    """Recompute the cells of every day due (never today: today is always read live), a month
    per transaction. Safe to run twice or at once: a day's cells are replaced in one
    transaction, under a unique key (a concurrent run fails on it and the next run redoes it)."""
    with session_scope(write=False) as session:
        days = rollup.due_days(session)
    done = 0
    for first, last in rollup.ranges(days):
        with session_scope() as session:
            done += rollup.refresh(session, rollup.days_between(first, last))
    if done:
        log.info("statistics: rolled up %d day(s)", done)
    return done
