"""`rq cron` configuration: what the scheduler process enqueues, and how often."""

from __future__ import annotations

from rq import cron

from dispatch.core.config import get_settings
from dispatch.core.jobs import QueueName
from workers.maintenance import relay_outbox, sweep
from workers.matching import refresh_prices
from workers.plans import schedule_plans, welfare_guarantee
from workers.stats import refresh_stats

_settings = get_settings()

# ttl: a run that waited longer than a few intervals is superseded by the next one.
cron.register(relay_outbox, queue_name=QueueName.MAINTENANCE, interval=2, ttl=10, result_ttl=0)
cron.register(
    sweep,
    queue_name=QueueName.MAINTENANCE,
    interval=_settings.sweep_interval_seconds,
    ttl=_settings.sweep_interval_seconds * 3,
    result_ttl=0,
)

# Recurring services, the welfare guarantee and the statistics rollups (issue 5). Every job is
# idempotent, so a run that overlaps the previous one, or a second scheduler, does nothing twice.
cron.register(
    schedule_plans,
    queue_name=QueueName.MAINTENANCE,
    interval=_settings.plan_schedule_interval_seconds,
    ttl=_settings.plan_schedule_interval_seconds * 2,
    result_ttl=0,
)
cron.register(
    welfare_guarantee,
    queue_name=QueueName.MAINTENANCE,
    interval=_settings.welfare_check_interval_seconds,
    ttl=_settings.welfare_check_interval_seconds * 2,
    result_ttl=0,
)
cron.register(
    refresh_stats,
    queue_name=QueueName.MAINTENANCE,
    interval=_settings.stats_refresh_interval_seconds,
    ttl=_settings.stats_refresh_interval_seconds,
    result_ttl=0,
)

# ---- matching (issue 8): capacity prices from the forecast of today's remaining demand ----
cron.register(
    refresh_prices,
    queue_name=QueueName.MAINTENANCE,
    interval=_settings.match_price_refresh_seconds,
    ttl=_settings.match_price_refresh_seconds,
    result_ttl=0,
)
