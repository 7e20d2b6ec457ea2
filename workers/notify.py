"""The SMS send jobs: claim, send outside any transaction, record the result.

`send_pending_sms` is the one queue_sms wakes: a shared run that sends every due message in
batches (claim many in one statement, send, record in one transaction). `send_sms` sends one
message by id (kept for a targeted resend). Both are safe to run twice and concurrently: a
message is sent only by the run whose compare-and-set moved it queued -> sending.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select

from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope
from dispatch.core.jobs import COALESCE_SMS, JobName, QueueName
from dispatch.core.outbox import OutboxJob, claim, claim_coalesced, clear_wake
from dispatch.core.redis import get_queue, get_redis
from dispatch.notify import service as notify_service
from dispatch.notify.gateway import OutboxOnlyGateway
from dispatch.notify.models import MessageStatus
from hotline.gateway import get_gateway

log = logging.getLogger(__name__)

SMS_BATCH = 200  # messages kept only in the outbox: recorded in one statement
TWILIO_BATCH = 20  # messages sent through Twilio per claim
RETRY_WAKE_KEY = "eldercare:sms:retry-wake"


def send_pending_sms() -> dict[str, int]:
    """Send every due message, a batch at a time. A failed one is put back with its retry delay,
    and a run is scheduled for when the first retry falls due."""
    conn = get_redis()
    clear_wake(COALESCE_SMS, conn)  # a message queued from here on wakes the next run
    totals = {"sent": 0, "outbox_only": 0, "failed": 0, "retry": 0}
    with session_scope(write=False) as session:
        up_to = session.scalar(select(func.max(OutboxJob.id))) or 0
    limit = SMS_BATCH if isinstance(get_gateway(), OutboxOnlyGateway) else TWILIO_BATCH
    while True:
        with session_scope() as session:
            batch = notify_service.claim_batch(session, limit=limit)
        if batch:
            _send_batch(batch, totals)
        if len(batch) < limit:
            break
    with session_scope() as session:
        claim_coalesced(session, COALESCE_SMS, up_to=up_to)
        retry_at = notify_service.next_retry_at(session)
    if retry_at is not None:
        _schedule_retry_run(retry_at)
    return totals


def _send_batch(batch: list[tuple[int, str, str]], totals: dict[str, int]) -> None:
    gateway = get_gateway()
    if isinstance(gateway, OutboxOnlyGateway):
        with session_scope() as session:
            notify_service.record_outbox_only(session, message_ids=[m for m, _, _ in batch])
        totals["outbox_only"] += len(batch)
        return
    # One at a time: a Twilio number sends about one message a second anyway, and the batch
    # for a real gateway is small (TWILIO_BATCH), so a run records its results promptly.
    for message_id, to, body in batch:
        try:
            result = gateway.send(to=to, body=body, message_id=message_id)
        except Exception as exc:
            with session_scope() as session:
                retry = notify_service.release_after_error(
                    session, message_id=message_id, error=type(exc).__name__
                )
            totals["retry" if retry else "failed"] += 1
            log.warning(
                "SMS %s failed (%s); %s", message_id, type(exc).__name__, "will retry" if retry else "gave up"
            )
            continue
        with session_scope() as session:
            notify_service.record_result(session, message_id=message_id, result=result)
        totals["sent" if result.status == MessageStatus.SENT else "failed"] += 1


def _schedule_retry_run(at: object) -> None:
    """One scheduled run per retry time is enough (the run sends every due message)."""
    conn = get_redis()
    if not conn.set(RETRY_WAKE_KEY, "1", nx=True, ex=30):
        return
    delay = max(1.0, (at - utcnow()).total_seconds())  # type: ignore[operator]
    get_queue(QueueName.NOTIFY, conn).enqueue_in(
        timedelta(seconds=delay), JobName.SEND_PENDING_SMS, result_ttl=0, failure_ttl=3600
    )


def send_sms(*, message_id: int, outbox_id: int | None = None) -> str:
    """Safe to run twice: only the run that moves the message queued -> sending sends it.
    A gateway error puts it back in the queue and re-raises, so RQ's Retry tries again."""
    with session_scope() as session:
        message = notify_service.claim_for_sending(session, message_id=message_id)
        if message is None:
            claim(session, outbox_id)
            return "skipped"
        to, body = message.to_phone, message.body
    try:
        result = get_gateway().send(to=to, body=body, message_id=message_id)
    except Exception as exc:
        with session_scope() as session:
            retry = notify_service.release_after_error(
                session, message_id=message_id, error=type(exc).__name__
            )
            if not retry:
                claim(session, outbox_id)
        log.warning(
            "SMS %s failed (%s); %s", message_id, type(exc).__name__, "will retry" if retry else "gave up"
        )
        if retry:
            raise
        return "failed"
    with session_scope() as session:
        notify_service.record_result(session, message_id=message_id, result=result)
        claim(session, outbox_id)
    return result.status
