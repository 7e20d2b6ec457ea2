"""Names of queues and jobs. The dispatch package reaches jobs by dotted name only,
so it never imports `workers`; a test resolves every name."""

from __future__ import annotations

from enum import StrEnum


class QueueName(StrEnum):
    # One queue per worker process: RQ only tracks a popped job reliably that way.
    MATCH = "eldercare-match"
    NOTIFY = "eldercare-notify"
    MAINTENANCE = "eldercare-maintenance"


class JobName(StrEnum):
    MATCH_PENDING = "workers.matching.match_pending"
    MATCH_REQUEST = "workers.matching.match_request"  # MATCH_MODE=per_request only
    EXPIRE_OFFER = "workers.offers.expire_offer"
    EXPIRE_OFFERS = "workers.offers.expire_offers"  # the offers of one matcher run, one deadline
    RELAY_OUTBOX = "workers.maintenance.relay_outbox"
    SWEEP = "workers.maintenance.sweep"
    SEND_SMS = "workers.notify.send_sms"
    SEND_PENDING_SMS = "workers.notify.send_pending_sms"
    # Recurring services, the welfare guarantee, statistics rollups (issue 5): maintenance queue.
    SCHEDULE_PLANS = "workers.plans.schedule_plans"
    WELFARE_GUARANTEE = "workers.plans.welfare_guarantee"
    REFRESH_STATS = "workers.stats.refresh_stats"


# Outbox rows with a coalesce key wake one shared job instead of one job per row.
COALESCE_MATCH = "match"
COALESCE_SMS = "sms"
