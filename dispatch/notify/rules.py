"""Who gets which SMS. Called from one place, the end of `lifecycle.transition()` (plus request
intake, for emergencies), so every change of a request is judged here once, in the transaction
that made it: the texts commit with the change or not at all. Writers that keep their write
transaction short (the matcher's offers, the accepts) prepare the same texts before it with
`offer_messages` and `family_messages` and hand them to `transition_many(texts=...)`.

- provider: its new offer (with the 1/2 reply hint and the deadline), or a job an operator
  dispatched to it by hand;
- family (linked accounts with a phone): assigned, completed, escalated; an emergency at once;
  "on the way" when the caregiver sets off (sent by the provider page, `on_the_way()` below).
- the duty operator (OPERATOR_PHONE): an emergency at once, while matching runs.

Texts are short Simplified Chinese. They name the elder masked (张*英) and the township, never
the elder's phone number, address or care notes: an SMS can be read by whoever holds the phone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from dispatch.core.auth import Role, User, mask_name
from dispatch.core.clock import local
from dispatch.core.config import get_settings
from dispatch.core.events import EventLike
from dispatch.elders import service as elder_service
from dispatch.elders.models import Elder
from dispatch.notify.models import OwedText
from dispatch.notify.service import queue_sms, queue_sms_many
from dispatch.orders.models import ServiceRequest
from services.models import Provider

SIGN = "【静海养老】"
KIND_TEXT = {
    "meal": "助餐",
    "day_care": "日间照料",
    "home_care": "居家照护",
    "visit": "探访",
    "emergency": "紧急求助",
}
SLOT_TEXT = {"lunch": "午餐", "dinner": "晚餐"}
# Escalations whose family SMS is sent elsewhere (a welfare check tells the family itself).
_OWN_FAMILY_TEXT = frozenset({"welfare_check"})


# ---- wording ----------------------------------------------------------------------------


def service_text(request: ServiceRequest) -> str:
    """助餐（午餐，送餐上门）, 居家照护, ...: what is being done, without any health detail."""
    text = KIND_TEXT.get(request.kind, request.kind)
    if request.kind == "meal":
        parts = [SLOT_TEXT.get(str(request.details.get("slot") or "lunch"), "午餐")]
        if request.details.get("delivery"):
            parts.append("送餐上门")
        text += f"（{'，'.join(parts)}）"
    return text


def day_time(value: datetime) -> str:
    t = local(value)
    return f"{t.month}月{t.day}日{t:%H:%M}"


def window_text(request: ServiceRequest) -> str:
    return f"{day_time(request.window_start)}-{local(request.window_end):%H:%M}"


def offer_text(request: ServiceRequest, elder: ElderNamed, expires_at: datetime) -> str:
    return (
        f"{SIGN}新派单#{request.id}：{service_text(request)}，{mask_name(elder.name)}（{elder.township}），"
        f"{window_text(request)}。回复1接单，回复2拒绝，请于{local(expires_at):%H:%M}前回复。"
    )


def manual_dispatch_text(request: ServiceRequest, elder: Elder) -> str:
    return (
        f"{SIGN}调度中心派单#{request.id}：{service_text(request)}，{mask_name(elder.name)}"
        f"（{elder.township}），{window_text(request)}。详情请看服务机构页面。"
    )


class ElderNamed(Protocol):
    """What a text says of an elder (an Elder, or its two columns read alone)."""

    @property
    def name(self) -> str: ...

    @property
    def township(self) -> str: ...


class ProviderNamed(Protocol):
    @property
    def name(self) -> str: ...


class _ElderName(NamedTuple):
    name: str
    township: str


class _ProviderName(NamedTuple):
    name: str


def family_text(
    purpose: str,
    request: ServiceRequest,
    elder: ElderNamed,
    provider: ProviderNamed | None,
    *,
    eta_minutes: int | None = None,
) -> str:
    who, what = mask_name(elder.name), service_text(request)
    if purpose == "on_the_way":
        by = provider.name if provider else "服务机构"
        eta = f"，预计{eta_minutes}分钟内到达" if eta_minutes else ""
        return f"{SIGN}{by}的服务人员已出发前往{who}处（{what}）{eta}，请留意开门。"
    if purpose == "assigned":
        by = provider.name if provider else "服务机构"
        return f"{SIGN}{who}的{what}（{window_text(request)}）已由{by}接单。"
    if purpose == "completed":
        return f"{SIGN}{who}的{what}已于{day_time(request.closed_at or request.updated_at)}完成。"
    if purpose == "escalated":
        return f"{SIGN}{who}的{what}暂未安排到服务机构，调度中心正在人工处理。"
    return f"{SIGN}紧急：{who}发出紧急求助，调度中心正在处理，请尽快联系老人。"


# ---- recipients -------------------------------------------------------------------------


def provider_phone(session: Session, provider: Provider) -> str | None:
    """The provider's duty phone, else the phone of one of its active accounts."""
    if provider.phone:
        return provider.phone
    return session.exec(
        select(User.phone)
        .where(
            User.provider_id == provider.id,
            User.role == Role.PROVIDER,
            col(User.active).is_(True),
            col(User.phone).is_not(None),
        )
        .order_by(col(User.id))
    ).first()


def _tell_family(
    session: Session, request: ServiceRequest, purpose: str, *, eta_minutes: int | None = None
) -> None:
    _tell_families(session, [request], purpose, eta_minutes=eta_minutes)


def _tell_provider(
    session: Session, request: ServiceRequest, provider_id: int, purpose: str, body: str
) -> None:
    provider = session.get(Provider, provider_id)
    phone = provider_phone(session, provider) if provider else None
    if phone:
        queue_sms_many(session, [_provider_message(request, provider_id, phone, purpose, body)])


def _provider_message(
    request: ServiceRequest, provider_id: int, phone: str, purpose: str, body: str
) -> OwedText:
    return OwedText(phone, body, purpose, "provider", request.id, request.elder_id, provider_id)


# ---- rules by event ---------------------------------------------------------------------


def _offered(session: Session, request: ServiceRequest, event: EventLike) -> None:
    elder = session.get(Elder, request.elder_id)
    provider_id = event.data.get("provider_id")
    if elder is None or not provider_id:
        return
    expires = datetime.fromisoformat(str(event.data["expires_at"]))
    _tell_provider(session, request, int(provider_id), "offer", offer_text(request, elder, expires))


def _assigned(session: Session, request: ServiceRequest, event: EventLike) -> None:
    if event.data.get("manual") and request.provider_id:
        elder = session.get(Elder, request.elder_id)
        if elder is not None:
            body = manual_dispatch_text(request, elder)
            _tell_provider(session, request, request.provider_id, "dispatched", body)
    _tell_family(session, request, "assigned")


def _completed(session: Session, request: ServiceRequest, _event: EventLike) -> None:
    _tell_family(session, request, "completed")


def _escalated(session: Session, request: ServiceRequest, _event: EventLike) -> None:
    # An emergency told the family at intake already; a welfare check tells them itself.
    if request.kind == "emergency" or request.escalation_reason in _OWN_FAMILY_TEXT:
        return
    _tell_family(session, request, "escalated")


_RULES: dict[str, Callable[[Session, ServiceRequest, EventLike], None]] = {
    "request.offered": _offered,
    "request.assigned": _assigned,
    "request.completed": _completed,
    "request.escalated": _escalated,
}


def after_transition(session: Session, request: ServiceRequest, event: EventLike) -> None:
    """The texts a change of status owes, queued in the change's own transaction."""
    rule = _RULES.get(event.type)
    if rule is not None:
        rule(session, request, event)


def after_transitions(session: Session, pairs: Sequence[tuple[ServiceRequest, EventLike]]) -> None:
    """after_transition() for many changes at once, in bulk where it counts: the matcher's
    offers (one read of the elders, one of the providers, one insert of the messages) and the
    families told of accepted offers (one read each of elders, providers and relatives)."""
    offered = [(r, e) for r, e in pairs if e.type == "request.offered"]
    assigned = [r for r, e in pairs if _family_told_in_bulk(e)]
    for request, event in pairs:
        if event.type != "request.offered" and not _family_told_in_bulk(event):
            after_transition(session, request, event)
    if assigned:
        _tell_families(session, assigned, "assigned")
    if offered:
        offers = [
            (request, int(event.data["provider_id"]), datetime.fromisoformat(str(event.data["expires_at"])))
            for request, event in offered
            if event.data.get("provider_id")
        ]
        queue_sms_many(session, offer_messages(session, offers))


def offer_messages(
    session: Session, offers: Sequence[tuple[ServiceRequest, int, datetime]]
) -> list[OwedText]:
    """The texts that tell providers of their new offers, (request, provider id, deadline) each,
    not yet queued, in the order of `offers`: one read each of elders and providers (and the
    accounts' phones of providers without a duty phone). An offer whose elder or provider phone
    is not found gets none. The matcher prepares them before its write transaction
    (matching/service.py: prepare_apply), as accepts do the families' texts."""
    elders = _elder_names(session, {r.elder_id for r, _, _ in offers})
    phones = _provider_phones(session, {provider_id for _, provider_id, _ in offers})
    messages = []
    for request, provider_id, expires_at in offers:
        elder, phone = elders.get(request.elder_id), phones.get(provider_id)
        if elder is None or not phone:
            continue
        body = offer_text(request, elder, expires_at)
        messages.append(_provider_message(request, provider_id, phone, "offer", body))
    return messages


def _family_told_in_bulk(event: EventLike) -> bool:
    """An accepted offer tells only the family (a manual dispatch also texts the provider)."""
    return event.type == "request.assigned" and not event.data.get("manual")


def _elder_names(session: Session, ids: set[int]) -> dict[int, _ElderName]:
    """Only the two columns a text says of each elder (ORM objects cost several times more)."""
    if not ids:
        return {}
    stmt = sql_select(col(Elder.id), col(Elder.name), col(Elder.township)).where(col(Elder.id).in_(ids))
    return {row.id: _ElderName(row.name, row.township) for row in session.execute(stmt)}


def _provider_phones(session: Session, ids: set[int]) -> dict[int, str]:
    """Each provider's duty phone, else one of its active accounts' (provider_phone())."""
    if not ids:
        return {}
    phones: dict[int, str] = {}
    for provider_id, phone in session.execute(
        sql_select(col(Provider.id), col(Provider.phone)).where(col(Provider.id).in_(ids))
    ):
        if phone:
            phones[provider_id] = phone
        else:  # rare: read as provider_phone() does
            provider = session.get(Provider, provider_id)
            account_phone = provider_phone(session, provider) if provider else None
            if account_phone:
                phones[provider_id] = account_phone
    return phones


def _tell_families(
    session: Session, requests: Sequence[ServiceRequest], purpose: str, *, eta_minutes: int | None = None
) -> None:
    """Text each request's relatives about it: one read each of elders, providers, relatives."""
    queue_sms_many(session, family_messages(session, requests, purpose, eta_minutes=eta_minutes))


def family_messages(
    session: Session,
    requests: Sequence[ServiceRequest],
    purpose: str,
    *,
    eta_minutes: int | None = None,
    provider_ids: Mapping[int | None, int] | None = None,
) -> list[OwedText]:
    """The texts each request's relatives are owed (not yet queued): one read each of elders,
    providers, relatives. `provider_ids` names the provider of a request not yet written
    (an accept's texts are prepared before its write transaction: accepts.py)."""
    provider_of = dict(provider_ids or {})
    for request in requests:
        if request.id not in provider_of and request.provider_id:
            provider_of[request.id] = request.provider_id
    phones = elder_service.family_phones_of(session=session, elder_ids=[r.elder_id for r in requests])
    told = [r for r in requests if phones.get(r.elder_id)]  # most elders have no relative's phone
    if not told:
        return []
    elders = _elder_names(session, {r.elder_id for r in told})
    wanted = {provider_of[r.id] for r in told if r.id in provider_of}
    providers = (
        {
            row.id: _ProviderName(row.name)
            for row in session.execute(
                sql_select(col(Provider.id), col(Provider.name)).where(col(Provider.id).in_(wanted))
            )
        }
        if wanted
        else {}
    )
    messages = []
    for request in told:
        elder = elders.get(request.elder_id)
        if elder is None:
            continue
        provider = providers.get(provider_of[request.id]) if request.id in provider_of else None
        body = family_text(purpose, request, elder, provider, eta_minutes=eta_minutes)
        for phone in phones.get(request.elder_id, []):
            messages.append(OwedText(phone, body, purpose, "family", request.id, request.elder_id))
    return messages


def after_created(session: Session, request: ServiceRequest) -> None:
    """At intake only an emergency is told at once (to the family, and to the duty operator's
    phone, in parallel with matching); the rest waits for a change."""
    if request.kind == "emergency":
        _tell_family(session, request, "emergency")
        _tell_operator(session, request)


# ---- matching (issue 8): an emergency reaches the duty operator at once ----


def operator_emergency_text(request: ServiceRequest, elder: Elder) -> str:
    return (
        f"{SIGN}紧急求助#{request.id}：{mask_name(elder.name)}（{elder.township}），"
        f"{day_time(request.created_at)}，请立即在调度台处理。"
    )


def _tell_operator(session: Session, request: ServiceRequest) -> None:
    phone = get_settings().operator_phone
    elder = session.get(Elder, request.elder_id)
    if not phone or elder is None:
        return
    queue_sms(
        session,
        to=phone,
        body=operator_emergency_text(request, elder),
        purpose="emergency",
        audience="operator",
        request_id=request.id,
        elder_id=request.elder_id,
    )


def on_the_way(session: Session, request: ServiceRequest, *, eta_minutes: int | None = None) -> None:
    """The caregiver set off to an assigned job (the provider page's button): tell the family.
    Not a status change, so not an event; the caller records the departure once."""
    _tell_family(session, request, "on_the_way", eta_minutes=eta_minutes)
