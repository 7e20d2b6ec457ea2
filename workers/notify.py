"""The SMS send job: claim, send outside any transaction, record the result."""

from __future__ import annotations

import logging

from dispatch.core.db import session_scope
from dispatch.core.outbox import claim
from dispatch.notify import service as notify_service
from hotline.gateway import get_gateway

log = logging.getLogger(__name__)


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
