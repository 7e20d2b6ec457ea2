"""Inbound SMS and delivery callbacks.

A provider (its duty phone `Provider.phone`, or the phone of one of its provider accounts)
replying 1/Y accepts its newest pending offer, 2/N declines it, through the same offer service
as the provider page; anything else gets a short help text. Unknown senders get nothing back.
Delivery callbacks move a message's status forward only.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role, User, mask_name
from dispatch.core.config import get_settings
from dispatch.elders.models import Elder
from dispatch.notify import rules as sms_rules
from dispatch.notify import service as notify_service
from dispatch.notify.models import MessageStatus
from dispatch.orders import offers
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from hotline import twiml
from hotline.service import Inbound, claim, finish, system_principal
from services.models import Provider

ACCEPT_WORDS = frozenset({"1", "Y", "YES", "接", "接单", "接受"})
DECLINE_WORDS = frozenset({"2", "N", "NO", "拒", "拒绝", "不接"})
SIGN = sms_rules.SIGN

# Twilio's message statuses in ours; the ones not named here (queued, accepted, sending...) are
# earlier than what the send job already recorded, so they change nothing.
TWILIO_STATUS = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}


def parse_reply(body: str) -> str | None:
    """'accept', 'decline' or None. Full-width digits and letters (１, Ｙ) count as well."""
    text = unicodedata.normalize("NFKC", body).strip().upper().rstrip("。.!！ ")
    if text in ACCEPT_WORDS:
        return "accept"
    if text in DECLINE_WORDS:
        return "decline"
    return None


def help_text() -> str:
    return f"{SIGN}回复1接受、回复2拒绝您最新的派单。其他事宜请致电调度中心{get_settings().operator_phone}。"


NO_OFFER_TEXT = f"{SIGN}您目前没有待确认的派单。"
GONE_TEXT = f"{SIGN}该派单已失效（已超时或已由调度员处理），请勿上门。"


@dataclass
class Sender:
    """The providers a phone number speaks for, and their accounts with that number."""

    provider_ids: set[int] = field(default_factory=set)
    accounts: dict[int, User] = field(default_factory=dict)


def find_sender(session: Session, phone: str | None) -> Sender | None:
    if phone is None:
        return None
    sender = Sender()
    for user in session.exec(
        select(User).where(
            User.phone == phone,
            User.role == Role.PROVIDER,
            col(User.active).is_(True),
            col(User.provider_id).is_not(None),
        )
    ):
        assert user.provider_id is not None
        sender.provider_ids.add(user.provider_id)
        sender.accounts.setdefault(user.provider_id, user)
    for provider_id in session.exec(
        select(Provider.id).where(Provider.phone == phone, col(Provider.active).is_(True))
    ):
        if provider_id is not None:
            sender.provider_ids.add(provider_id)
    return sender if sender.provider_ids else None


def newest_pending_offer(session: Session, provider_ids: set[int], now: datetime) -> Offer | None:
    return session.exec(
        select(Offer)
        .where(
            col(Offer.provider_id).in_(provider_ids),
            col(Offer.status) == OfferStatus.PENDING,
            col(Offer.expires_at) > now,
        )
        .order_by(col(Offer.created_at).desc(), col(Offer.id).desc())
    ).first()


def _acting_as(session: Session, sender: Sender, provider_id: int) -> Principal:
    """The sender's own account when it has one (the answer is theirs), else the hotline's
    account acting for the provider whose duty phone this is."""
    account = sender.accounts.get(provider_id)
    if account is not None:
        return Principal.of(account)
    return system_principal(session, role=Role.PROVIDER, provider_id=provider_id)


def _accepted_text(session: Session, request: ServiceRequest) -> str:
    elder = session.get(Elder, request.elder_id)
    who = f"{mask_name(elder.name)}（{elder.township}）" if elder else ""
    return (
        f"{SIGN}已接单#{request.id}：{sms_rules.service_text(request)}，{who}，"
        f"{sms_rules.window_text(request)}。请按时服务，地址见服务机构页面。"
    )


def inbound_sms(session: Session, inbound: Inbound, *, now: datetime) -> str:
    """`POST /hotline/twilio/sms`. A refused answer (the offer expired or was taken meanwhile)
    raises a domain error: the endpoint rolls back and answers with `sms_failed`."""
    row, first = claim(session, inbound)
    if not first:
        return row.response
    sender = find_sender(session, inbound.phone)
    if sender is None:
        return finish(session, row, outcome="ignored", response=twiml.empty())
    row.from_phone = inbound.phone or ""
    intent = parse_reply(inbound.body)
    if intent is None:
        return finish(session, row, outcome="help", response=twiml.sms_reply(help_text()))
    offer = newest_pending_offer(session, sender.provider_ids, now)
    if offer is None:
        return finish(session, row, outcome=f"{intent}:no_offer", response=twiml.sms_reply(NO_OFFER_TEXT))
    assert offer.id is not None
    principal = _acting_as(session, sender, offer.provider_id)
    links = {"provider_id": offer.provider_id, "request_id": offer.request_id}
    if intent == "accept":
        request = offers.accept(session, principal=principal, offer_id=offer.id)
        reply = _accepted_text(session, request)
        return finish(session, row, outcome="accepted", response=twiml.sms_reply(reply), **links)
    offers.decline(session, principal=principal, offer_id=offer.id, reason="短信回复拒绝")
    reply = f"{SIGN}已拒绝派单#{offer.request_id}，系统将转派其他机构。"
    return finish(session, row, outcome="declined", response=twiml.sms_reply(reply), **links)


def sms_failed(session: Session, inbound: Inbound) -> str:
    row, first = claim(session, inbound)
    if not first:
        return row.response
    return finish(session, row, outcome="gone", response=twiml.sms_reply(GONE_TEXT))


def delivery_status(
    session: Session, inbound: Inbound, *, error_code: str = "", message_id: int | None = None
) -> str:
    """`POST /hotline/twilio/status`: `inbound.body` carries Twilio's MessageStatus."""
    row, first = claim(session, inbound)
    if not first:
        return row.response
    ours = TWILIO_STATUS.get(inbound.body)
    moved = ours is not None and notify_service.advance_status(
        session,
        sid=inbound.sid,
        status=ours,
        error=f"twilio {error_code}" if error_code else "",
        message_id=message_id,
    )
    outcome = f"{inbound.body[:20]}:{'applied' if moved else 'ignored'}"
    return finish(session, row, outcome=outcome, response=twiml.empty())
