"""What every webhook shares: the dedupe claim, the hotline's system account, who is calling,
and the opening hours. Webhooks persist, write to the outbox and answer; nothing here matches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, User
from dispatch.core.clock import local
from dispatch.core.validation import normalise_phone
from dispatch.elders import service as elder_service
from dispatch.elders.models import Elder
from hotline.models import InboundWebhook, WebhookKind

# The account the IVR and SMS replies act as (created on first use, inactive: nobody can sign
# in with it), so that requests, audit rows and offer answers name who did them.
SYSTEM_USERNAME = "hotline"
_NO_PASSWORD = "!hotline-system-account-cannot-sign-in"


@dataclass(frozen=True)
class Inbound:
    """One webhook as Twilio sent it (after its signature was checked)."""

    kind: WebhookKind
    sid: str
    from_raw: str = ""
    digits: str = ""
    body: str = ""
    attempt: int = 0

    @property
    def dedupe_key(self) -> str:
        if self.kind == WebhookKind.GATHER:
            return f"gather:{self.sid}:{self.attempt}:{self.digits}"
        if self.kind == WebhookKind.STATUS:
            return f"status:{self.sid}:{self.body}"
        return f"{self.kind.value}:{self.sid}"

    @property
    def phone(self) -> str | None:
        """The sender's number in the registry's form, or None (anonymous, a SIP client...)."""
        try:
            return normalise_phone(self.from_raw) if self.from_raw else None
        except ValueError:
            return None


def claim(session: Session, inbound: Inbound) -> tuple[InboundWebhook, bool]:
    """(row, True) for the first delivery of this webhook; (earlier row, False) for a retry.
    The unique key decides: a twin delivered concurrently waits on it and then reads ours."""
    key = inbound.dedupe_key
    existing = session.exec(select(InboundWebhook).where(InboundWebhook.dedupe_key == key)).first()
    if existing is not None:
        return existing, False
    row = InboundWebhook(
        dedupe_key=key,
        kind=inbound.kind,
        sid=inbound.sid[:64],
        from_phone=(inbound.phone or inbound.from_raw)[:32],
        digits=inbound.digits[:8],
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        earlier = session.exec(select(InboundWebhook).where(InboundWebhook.dedupe_key == key)).one()
        return earlier, False
    return row, True


def finish(session: Session, row: InboundWebhook, *, outcome: str, response: str, **links: int | None) -> str:
    """Store what the webhook did and answered (a retry answers the same)."""
    row.outcome = outcome[:40]
    row.response = response
    for key, value in links.items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    return response


def system_principal(
    session: Session, *, role: Role = Role.OPERATOR, provider_id: int | None = None
) -> Principal:
    """The hotline's own account, as an operator (IVR intake) or on behalf of a provider (SMS)."""
    user = session.exec(select(User).where(User.username == SYSTEM_USERNAME)).first()
    if user is None:
        user = User(
            username=SYSTEM_USERNAME,
            password_hash=_NO_PASSWORD,
            role=Role.OPERATOR,
            display_name="电话语音/短信",
            active=False,
        )
        try:
            with session.begin_nested():
                session.add(user)
        except IntegrityError:
            user = session.exec(select(User).where(User.username == SYSTEM_USERNAME)).one()
    assert user.id is not None
    principal = Principal(user.id, SYSTEM_USERNAME, role, provider_id)
    audit.bind_actor(session, principal, "twilio")  # the changes of this webhook are the hotline's
    return principal


@dataclass(frozen=True)
class Caller:
    elder: Elder | None
    family: bool = False  # a linked relative calling, not the elder
    ambiguous: bool = False  # several elders share the number


def find_caller(session: Session, phone: str | None) -> Caller:
    """Who is calling. The elder's own number wins over a relative's; a number that leads to
    several elders (spouses sharing a landline, a relative of two) is put through to a person,
    since a wrong guess sends a meal to the wrong door."""
    if phone is None:
        return Caller(None)
    principal = system_principal(session)
    found = [
        e
        for e in elder_service.find_elders(session=session, principal=principal, phone=phone, limit=10)
        if e.deceased_on is None
    ]
    if found:
        audit.record(
            principal=principal,
            action="read",
            elder_ids=[e.id for e in found if e.id is not None],
            what="hotline caller lookup",
            client="twilio",
            session=session,
        )
    own = [e for e in found if e.phone == phone]
    if len(own) == 1:
        return Caller(own[0])
    if len(own) > 1 or len(found) > 1:
        return Caller(None, ambiguous=True)
    if len(found) == 1:
        return Caller(found[0], family=True)
    return Caller(None)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def within_hours(now: datetime, open_at: str, close_at: str) -> bool:
    """Whether `now` (any timezone; judged in Asia/Shanghai) is inside the hotline's hours.
    close may be 24:00; close before open means the hours run past midnight."""
    t: time = local(now).time()
    minute = t.hour * 60 + t.minute
    start, end = _minutes(open_at), _minutes(close_at)
    if start == end:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end
