"""Raise a welfare check: an urgent `visit` request, escalated at once so it is pinned in front
of the operators with its reason, and an SMS to the elder's family."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from dispatch.core.auth import mask_name
from dispatch.core.clock import utcnow
from dispatch.core.events import emit
from dispatch.elders import service as elder_service
from dispatch.elders.models import Elder
from dispatch.notify.service import queue_sms
from dispatch.orders.lifecycle import RequestStatus, transition
from dispatch.orders.models import Channel, Priority, RequestKind, ServiceRequest
from dispatch.welfare.models import WelfareCheck

WELFARE_ESCALATION = "welfare_check"

# What the family is told, by cause (short, Chinese, the elder's name masked, no health details,
# no phone numbers), and what stands in for a missing detail.
FAMILY_TEXT = {
    "failed_visit": (
        "【静海养老服务】{name}今日的上门服务未能完成（{detail}），调度中心将尽快联系核实老人情况。",
        "未完成",
    ),
    "meal_not_delivered": ("【静海养老服务】{name}今日的助餐未能送达，调度中心将尽快联系核实老人情况。", ""),
    "rhythm_overdue": (
        "【静海养老服务】{name}已{detail}未获探访，超过约定探访周期，调度中心已安排人员跟进。",
        "多日",
    ),
    "not_accepted": (
        "【静海养老服务】{name}{detail}的预约服务暂无机构接单，调度中心已安排人员联系老人。",
        "",
    ),
    "not_delivered": (
        "【静海养老服务】{name}{detail}的预约服务未按时送达，调度中心将尽快联系核实老人情况。",
        "",
    ),
}


def raise_welfare_check(
    session: Session,
    *,
    elder_id: int,
    reason: str,
    dedupe_key: str,
    source_request_id: int | None = None,
    detail: str = "",
) -> WelfareCheck | None:
    """Idempotent per `dedupe_key`: a second call for the same cause returns None."""
    if session.exec(select(WelfareCheck).where(WelfareCheck.dedupe_key == dedupe_key)).first() is not None:
        return None
    elder = session.get(Elder, elder_id)
    if elder is None or elder.deceased_on is not None:
        return None
    now = utcnow()
    request = ServiceRequest(
        elder_id=elder_id,
        kind=RequestKind.VISIT,
        priority=Priority.URGENT,
        channel=Channel.SCHEDULED,
        status=RequestStatus.QUEUED,
        details={"welfare": True, "reason": reason},
        window_start=now,
        window_end=now + timedelta(hours=4),
        note=f"welfare check: {reason}{' - ' + detail if detail else ''}"[:500],
        township=elder.township,
        created_at=now,
        updated_at=now,
        due_at=now,
    )
    session.add(request)
    session.flush()
    data = {"kind": request.kind, "priority": request.priority, "township": request.township, "welfare": True}
    emit(session, "request.created", request_id=request.id, elder_id=elder_id, status="queued", data=data)
    transition(
        session,
        request,
        RequestStatus.ESCALATED,
        escalation_reason=WELFARE_ESCALATION,
        data={"reason": WELFARE_ESCALATION, "welfare_reason": reason, "source_request_id": source_request_id},
    )
    assert request.id is not None
    check = WelfareCheck(
        elder_id=elder_id,
        request_id=request.id,
        reason=reason,
        source_request_id=source_request_id,
        dedupe_key=dedupe_key,
    )
    session.add(check)
    session.flush()
    _tell_family(session, elder, reason=reason, detail=detail, request_id=request.id)
    return check


def _tell_family(session: Session, elder: Elder, *, reason: str, detail: str, request_id: int) -> None:
    template, fallback = FAMILY_TEXT.get(reason.split(":")[0], FAMILY_TEXT["failed_visit"])
    body = template.format(name=mask_name(elder.name), detail=detail or fallback)
    assert elder.id is not None
    for _link, user in elder_service.family_of(session=session, elder_id=elder.id):
        if user.phone:
            queue_sms(
                session,
                to=user.phone,
                body=body,
                purpose="welfare",
                audience="family",
                request_id=request_id,
                elder_id=elder.id,
            )
