"""The voice menu: who is calling, the <Gather> menu, and the request a key press files.

A known caller (the `From` number is an elder's own or a linked relative's) inside the opening
hours hears a greeting by name and the menu; everyone else, and everyone after hours, is put
through to the on-duty operator. 1/2/3 file a meal/home care/day care request (channel `ivr`)
through the normal intake service; 9 files an emergency and puts the caller through at once.
A wrong key (or none) repeats the menu at most twice, then the operator takes over.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, select

from dispatch.core.clock import local
from dispatch.core.config import get_settings
from dispatch.elders.models import CareLevel, Elder
from dispatch.orders import service as request_service
from dispatch.orders.models import Channel, RequestKind
from dispatch.orders.schemas import RequestCreate, RequestDetails
from hotline import twiml
from hotline.models import InboundWebhook
from hotline.service import Inbound, claim, find_caller, finish, system_principal, within_hours

log = logging.getLogger(__name__)

GATHER_PATH = "/hotline/twilio/gather"
MAX_REPEATS = 2  # the menu is repeated at most this often after a wrong key


def gather_url(attempt: int) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}{GATHER_PATH}?attempt={attempt}"


def operator_twiml(intro: str) -> str:
    settings = get_settings()
    return twiml.dial_operator(intro=intro, operator=settings.operator_phone, voice=settings.hotline_voice)


def incoming_call(session: Session, inbound: Inbound, *, now: datetime) -> str:
    """`POST /hotline/twilio/voice`."""
    row, first = claim(session, inbound)
    if not first:
        return row.response
    settings = get_settings()
    if not within_hours(now, settings.hotline_open, settings.hotline_close):
        return finish(
            session, row, outcome="operator:after_hours", response=operator_twiml(twiml.AFTER_HOURS_TEXT)
        )
    caller = find_caller(session, inbound.phone)
    if caller.elder is None:
        why = "operator:ambiguous" if caller.ambiguous else "operator:unknown"
        return finish(session, row, outcome=why, response=operator_twiml(twiml.OPERATOR_TEXT))
    intro = twiml.greeting(caller.elder.name, family=caller.family)
    answer = twiml.menu(intro=intro, gather_url=gather_url(0), voice=settings.hotline_voice)
    return finish(session, row, outcome="menu", response=answer, elder_id=caller.elder.id)


def _caller_elder(session: Session, inbound: Inbound) -> Elder | None:
    """The elder the call's greeting chose (so the answer stays consistent within one call)."""
    greeted = session.exec(
        select(InboundWebhook).where(InboundWebhook.dedupe_key == f"voice:{inbound.sid}")
    ).first()
    if greeted is not None:
        return session.get(Elder, greeted.elder_id) if greeted.elder_id else None
    return find_caller(session, inbound.phone).elder


def default_details(kind: RequestKind, elder: Elder) -> RequestDetails:
    """What an operator would fill in: lunch, delivered to elders who cannot walk to a canteen."""
    if kind == RequestKind.MEAL:
        return RequestDetails(slot="lunch", delivery=elder.care_level in (CareLevel.PARTIAL, CareLevel.FULL))
    return RequestDetails()


def key_pressed(session: Session, inbound: Inbound, *, now: datetime) -> str:
    """`POST /hotline/twilio/gather?attempt=N`. Raises a domain error if intake refuses; the
    endpoint then rolls back and answers with `key_failed`."""
    row, first = claim(session, inbound)
    if not first:
        return row.response
    settings = get_settings()
    elder = _caller_elder(session, inbound)
    if elder is None:
        return finish(session, row, outcome="operator:unknown", response=operator_twiml(twiml.OPERATOR_TEXT))
    kind = twiml.MENU.get(inbound.digits)
    if kind is None:
        if inbound.attempt < MAX_REPEATS:
            answer = twiml.menu(
                intro=twiml.RETRY_TEXT,
                gather_url=gather_url(inbound.attempt + 1),
                voice=settings.hotline_voice,
            )
            return finish(session, row, outcome="repeat", response=answer, elder_id=elder.id)
        answer = operator_twiml(twiml.HELP_OPERATOR_TEXT)
        return finish(session, row, outcome="operator:no_choice", response=answer, elder_id=elder.id)
    assert elder.id is not None
    request_in = RequestCreate(
        elder_id=elder.id,
        kind=RequestKind(kind),
        details=default_details(RequestKind(kind), elder),
        channel=Channel.IVR,
        note="电话语音菜单",
    )
    # One request per call, even if the menu were answered twice: the CallSid is the key.
    read, _ = request_service.create_request(
        session=session,
        principal=system_principal(session),
        request_in=request_in,
        idempotency_key=f"ivr-{inbound.sid}",
    )
    links = {"elder_id": elder.id, "request_id": read.id}
    if kind == RequestKind.EMERGENCY:
        return finish(
            session, row, outcome="emergency", response=operator_twiml(twiml.EMERGENCY_TEXT), **links
        )
    when = twiml.spoken_time(local(read.window_start), local(read.window_end), local(now))
    answer = twiml.confirm(text=twiml.confirmation_text(kind, when), voice=settings.hotline_voice)
    return finish(session, row, outcome="request", response=answer, **links)


def key_failed(session: Session, inbound: Inbound, error: str) -> str:
    """Intake refused the request (e.g. the elder is recorded as deceased): a person takes over."""
    log.warning("IVR call %s: intake refused (%s); putting the caller through", inbound.sid, error)
    row, first = claim(session, inbound)
    if not first:
        return row.response
    return finish(session, row, outcome="operator:refused", response=operator_twiml(twiml.HELP_OPERATOR_TEXT))
