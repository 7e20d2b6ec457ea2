"""Start an RQ worker on one queue, or the `rq cron` scheduler."""

from __future__ import annotations

import logging
import os
import socket
import time

import redis
from rq import SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.worker import BaseWorker

from dispatch.core.collector import settle_collector
from dispatch.core.config import get_settings
from dispatch.core.redis import get_queue, get_redis, serializer_for

log = logging.getLogger(__name__)

# How often a worker's thread for RQ's command channel (`rq.command`: shutdown, kill-horse)
# looks for a command. RQ polls every 60 s, and stopping the worker joins that thread without a
# bound, so a worker asked to stop waited up to a minute and `eldercare up` killed it at 10 s.
COMMAND_POLL_SECONDS = 1.0


class _PromptCommands(BaseWorker):
    """RQ's worker with its command channel polled every COMMAND_POLL_SECONDS."""

    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]  # RQ annotates it None
            sleep_time=COMMAND_POLL_SECONDS, daemon=True, exception_handler=self._pubsub_exception_handler
        )


class PromptSimpleWorker(_PromptCommands, SimpleWorker):
    pass


class PromptWorker(_PromptCommands, Worker):
    pass


WORKER_CLASSES: dict[str, type[BaseWorker]] = {"simple": PromptSimpleWorker, "fork": PromptWorker}


def run_worker(queue_name: str, *, burst: bool = False, worker_class: str = "simple") -> bool:
    """One queue per worker process: RQ tracks a popped job reliably only then.

    The default class is RQ's SimpleWorker: our jobs are trusted and short, and forking a
    work horse per job costs milliseconds each (see bench/). Job timeouts still apply."""
    # Every table, so SQLAlchemy resolves each foreign key whatever a job imports: a notify
    # worker alone never loaded `service_request`, and every Message flush failed there.
    import dispatch.app  # noqa: F401

    settings = get_settings()
    conn = get_redis()
    cls = WORKER_CLASSES[worker_class]
    worker = cls(
        [get_queue(queue_name, conn)],
        connection=conn,
        serializer=serializer_for(queue_name),
        name=f"{socket.gethostname()}.{os.getpid()}.{queue_name}",
        maintenance_interval=settings.worker_maintenance_interval,
        default_result_ttl=60,
    )
    settle_collector(threshold=0)  # what startup built stays for good: see dispatch/core/collector.py
    return worker.work(burst=burst, with_scheduler=True, logging_level=settings.rq_log_level)


def run_scheduler(*, retry_seconds: float = 1.0) -> None:
    """The `rq cron` scheduler with the platform's cron configuration (workers/cron.py).

    RQ's CronScheduler exits when Redis goes away; the relay and the sweeper are what rebuild
    the queues after exactly that, so the scheduler restarts itself here at once instead of
    waiting for a supervisor (a cold start costs seconds of imports)."""
    settle_collector(threshold=0)
    while True:
        scheduler = CronScheduler(connection=get_redis(), logging_level=get_settings().rq_log_level)
        scheduler.load_config_from_file("workers.cron")
        try:
            scheduler.start()
            return  # stopped on purpose (SIGTERM/SIGINT)
        except redis.RedisError as exc:
            log.warning(
                "cron scheduler lost Redis (%s); restarting in %.0f s", type(exc).__name__, retry_seconds
            )
            time.sleep(retry_seconds)
