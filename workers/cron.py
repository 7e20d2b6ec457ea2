"""`rq cron` configuration: what the scheduler process enqueues, and how often."""

from __future__ import annotations

from rq import cron

from dispatch.core.config import get_settings
from dispatch.core.jobs import QueueName
from workers.maintenance import relay_outbox, sweep
from workers.matching import refresh_prices

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

# ---- matching (issue 8): capacity prices from the forecast of today's remaining demand ----
cron.register(
    refresh_prices,
    queue_name=QueueName.MAINTENANCE,
    interval=_settings.match_price_refresh_seconds,
    ttl=_settings.match_price_refresh_seconds,
    result_ttl=0,
)
