"""Recurring services and the welfare guarantee: two `rq cron` jobs on the maintenance queue.
Both are safe to run twice or at once (each occurrence and each welfare cause is written once,
under a unique key), so a second scheduler or a retry does no harm."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sqlalchemy.exc import IntegrityError

from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope
from dispatch.core.outbox import claim
from dispatch.plans import scheduler
from dispatch.welfare import guarantee

log = logging.getLogger(__name__)


def schedule_plans(*, plan_id: int | None = None, outbox_id: int | None = None) -> dict[str, int]:
    """File the requests of every plan occurrence due within PLAN_HORIZON_HOURS (or of one plan,
    when woken by its creation). The outbox row is marked done only after the work, so a run
    killed mid-way is handed over again by the relay and finishes the rest."""
    result = scheduler.run(plan_id=plan_id)
    if outbox_id is not None:
        with session_scope() as session:
            claim(session, outbox_id)
    if result.created or result.plans_ended or result.refused:
        log.info("plans: %s", result)
    return {
        "created": result.created,
        "already": result.already,
        "refused": result.refused,
        "plans_ended": result.plans_ended,
    }


def welfare_guarantee() -> dict[str, Any]:
    """Raise one welfare check per cause not raised yet; one transaction each, so one elder's
    trouble never holds back another's check."""
    now = utcnow()
    with session_scope(write=False) as session:
        causes = guarantee.find_causes(session, now=now)
    reasons: Counter[str] = Counter()
    for cause in causes:
        try:
            with session_scope() as session:
                if guarantee.raise_cause(session, cause):
                    reasons[cause.reason] += 1
        except IntegrityError:  # a concurrent run raised this cause first
            continue
    if reasons:
        log.warning("welfare checks raised: %s", dict(reasons))
    return {"raised": sum(reasons.values()), "reasons": dict(reasons)}
