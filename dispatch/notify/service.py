"""Queue messages in the caller's transaction; the send job hands them to a gateway."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, visible_phone
from dispatch.core.clock import utcnow
from dispatch.core.inserts import insert_returning_keys
from dispatch.core.jobs import COALESCE_SMS, JobName, QueueName
from dispatch.core.outbox import add_job
from dispatch.notify.gateway import SendResult
from dispatch.notify.models import STATUS_RANK, Message, MessageStatus, OwedText
from dispatch.notify.schemas import MessageRead

MAX_ATTEMPTS = 5
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (5, 15, 60, 300))


def queue_sms(
    session: Session,
    *,
    to: str,
    body: str,
    purpose: str,
    audience: str,
    request_id: int | None = None,
    elder_id: int | None = None,
    provider_id: int | None = None,
) -> Message:
    """Owe an SMS: the message row and its send job commit with the change that caused them."""
    owed = OwedText(to, body, purpose, audience, request_id, elder_id, provider_id)
    queue_sms_many(session, [owed])
    message = session.get(Message, owed.id)
    assert message is not None
    return message


_TABLE = Message.__table__  # type: ignore[attr-defined]


def message_row(text: OwedText, now: datetime) -> dict[str, Any]:
    """The `Message` row of a text owed, queued at `now` (every column but the id, as the
    model's defaults give them)."""
    return {
        "to_phone": text.to_phone,
        "body": text.body[:480],
        "purpose": text.purpose,
        "audience": text.audience,
        "request_id": text.request_id,
        "elder_id": text.elder_id,
        "provider_id": text.provider_id,
        "status": MessageStatus.QUEUED.value,
        "attempts": 0,
        "provider_sid": None,
        "error": "",
        "created_at": now,
        "sent_at": None,
        "updated_at": now,
    }


def queue_sms_many(session: Session, texts: Sequence[OwedText]) -> None:
    """Owe SMS at once: one insert of the rows (Core: the ORM's flush cost several times more
    per row, inside the write lock), and one shared send job for every queued message (one run
    sends a batch of them). Each text gets its message's id."""
    if not texts:
        return
    now = utcnow()
    rows = [message_row(text, now) for text in texts]
    ids = insert_returning_keys(session.connection(), _TABLE, rows)
    for text, message_id in zip(texts, ids, strict=True):
        text.id = message_id
    add_job(session, JobName.SEND_PENDING_SMS, queue=QueueName.NOTIFY, coalesce=COALESCE_SMS)


def retry_delay(attempts: int) -> timedelta:
    """How long a message waits after its `attempts`-th failed attempt."""
    return RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1] if attempts > 0 else timedelta(0)


def claim_batch(session: Session, *, limit: int) -> list[tuple[int, str, str]]:
    """queued -> sending for up to `limit` messages that are due (a failed one waits its retry
    delay), as one compare-and-set: two send jobs never claim the same message.
    Returns (id, to, body) of each claimed message."""
    now = utcnow()
    candidates = session.execute(
        select(col(Message.id), col(Message.attempts), col(Message.updated_at))
        .where(col(Message.status) == MessageStatus.QUEUED)
        .order_by(col(Message.id))
        .limit(limit * 4)
    ).all()
    due = [row.id for row in candidates if row.updated_at + retry_delay(row.attempts) <= now][:limit]
    if not due:
        return []
    claimed = session.execute(
        update(Message)
        .where(col(Message.id).in_(due), col(Message.status) == MessageStatus.QUEUED)
        .values(status=MessageStatus.SENDING, attempts=Message.attempts + 1, updated_at=now)
        .returning(col(Message.id), col(Message.to_phone), col(Message.body))
    ).all()
    return sorted((row.id, row.to_phone, row.body) for row in claimed)


def record_outbox_only(session: Session, *, message_ids: Sequence[int]) -> None:
    """Messages no gateway will send (Twilio not configured): kept, visible in the console."""
    if message_ids:
        now = utcnow()
        session.execute(
            update(Message)
            .where(col(Message.id).in_(list(message_ids)), col(Message.status) == MessageStatus.SENDING)
            .values(status=MessageStatus.OUTBOX_ONLY, sent_at=now, updated_at=now)
        )


def next_retry_at(session: Session) -> datetime | None:
    """When the earliest message waiting for a retry becomes due."""
    rows = session.execute(
        select(col(Message.attempts), col(Message.updated_at))
        .where(col(Message.status) == MessageStatus.QUEUED, col(Message.attempts) > 0)
        .order_by(col(Message.updated_at))
        .limit(50)
    ).all()
    return min((r.updated_at + retry_delay(r.attempts) for r in rows), default=None)


def requeue_stuck(session: Session, *, older_than: timedelta) -> int:
    """Messages left `sending` by a send job that died between claiming and recording: back to
    the queue. At-least-once: in that rare crash an SMS may go out twice, never not at all."""
    result = session.execute(
        update(Message)
        .where(col(Message.status) == MessageStatus.SENDING, col(Message.updated_at) < utcnow() - older_than)
        # Due at once: the dead job's attempt counts, but its retry delay is long over.
        .values(status=MessageStatus.QUEUED, updated_at=utcnow() - RETRY_DELAYS[-1])
    )
    return int(getattr(result, "rowcount", 0) or 0)


def stale_due_count(session: Session, *, older_than: timedelta) -> int:
    """Due messages that have waited this long: their wake-up was lost (a flushed Redis)."""
    now = utcnow()
    rows = session.execute(
        select(col(Message.attempts), col(Message.updated_at))
        .where(col(Message.status) == MessageStatus.QUEUED, col(Message.updated_at) < now - older_than)
        .order_by(col(Message.id))
        .limit(200)
    ).all()
    return sum(1 for r in rows if r.updated_at + retry_delay(r.attempts) <= now)


def claim_for_sending(session: Session, *, message_id: int) -> Message | None:
    """queued -> sending, as a compare-and-set: two runs of the send job never both send."""
    result = session.execute(
        update(Message)
        .where(col(Message.id) == message_id, col(Message.status) == MessageStatus.QUEUED)
        .values(status=MessageStatus.SENDING, attempts=Message.attempts + 1, updated_at=utcnow())
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    return session.get(Message, message_id)


def record_result(session: Session, *, message_id: int, result: SendResult) -> None:
    message = session.get(Message, message_id)
    if message is None:
        return
    # A delivery callback may have overtaken the send job (Twilio can report "delivered" before
    # the job records "sent"): never move a message back.
    if _rank(result.status) >= _rank(message.status):
        message.status = result.status
    message.provider_sid = result.sid or message.provider_sid
    message.error = result.error[:200]
    message.sent_at = utcnow() if result.status in (MessageStatus.SENT, MessageStatus.OUTBOX_ONLY) else None
    message.updated_at = utcnow()
    session.add(message)


def _rank(status: str) -> int:
    try:
        return STATUS_RANK[MessageStatus(status)]
    except ValueError:
        return -1


def advance_status(
    session: Session, *, sid: str, status: MessageStatus, error: str = "", message_id: int | None = None
) -> bool:
    """Apply a delivery callback, forward only (queued -> sent -> delivered/undelivered/failed):
    a retried, late or reordered callback changes nothing. The message is found by its SID, or by
    our id when the callback overtook the send job that records the SID. Compare-and-set, so two
    callbacks racing cannot move it backwards either."""
    for _ in range(3):
        message = session.exec(select(Message).where(Message.provider_sid == sid)).first()
        if message is None and message_id is not None:
            message = session.get(Message, message_id)
            if message is not None and message.provider_sid not in (None, sid):
                return False  # that id belongs to another Twilio message
        if message is None or _rank(status) <= _rank(message.status):
            return False
        values: dict[str, object] = {"status": status, "provider_sid": sid, "updated_at": utcnow()}
        if error:
            values["error"] = error[:200]
        result = session.execute(
            update(Message)
            .where(col(Message.id) == message.id, col(Message.status) == message.status)
            .values(**values)
        )
        if getattr(result, "rowcount", 0) == 1:
            session.expire(message)
            return True
        session.expire(message)  # someone else moved it meanwhile: read it again
    return False


def release_after_error(session: Session, *, message_id: int, error: str) -> bool:
    """Put a message back in the queue after a failed attempt; True if it may be retried."""
    message = session.get(Message, message_id)
    if message is None:
        return False
    retry = message.attempts < MAX_ATTEMPTS
    message.status = MessageStatus.QUEUED if retry else MessageStatus.FAILED
    message.error = error[:200]
    message.updated_at = utcnow()
    session.add(message)
    return retry


def list_messages(
    session: Session,
    *,
    request_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    audience: str | None = None,
    purpose: str | None = None,
) -> Sequence[Message]:
    stmt = select(Message)
    if request_id is not None:
        stmt = stmt.where(Message.request_id == request_id)
    if status is not None:
        stmt = stmt.where(Message.status == status)
    if audience is not None:
        stmt = stmt.where(Message.audience == audience)
    if purpose is not None:
        stmt = stmt.where(Message.purpose == purpose)
    return session.exec(stmt.order_by(col(Message.id).desc()).offset(offset).limit(limit)).all()


def message_read(principal: Principal, message: Message) -> MessageRead:
    assert message.id is not None
    return MessageRead(
        id=message.id,
        to=visible_phone(principal, message.to_phone) or "",
        body=message.body,
        purpose=message.purpose,
        audience=message.audience,
        request_id=message.request_id,
        elder_id=message.elder_id,
        status=message.status,  # type: ignore[arg-type]
        attempts=message.attempts,
        error=message.error,
        created_at=message.created_at,
        sent_at=message.sent_at,
    )
