"""The welfare guarantee: find every service that did not reach an elder, and raise one welfare
check per cause (an `rq cron` job runs this every WELFARE_CHECK_INTERVAL_SECONDS).

Causes, each with its dedupe key (a cause is raised once, however often the job runs):
- a scheduled request nobody took: still `escalated` (all declined, not placed in time, ...)
  WELFARE_UNPLACED_LEAD_MINUTES before its window — `not_accepted:<escalation reason>`;
- a scheduled request assigned but never checked in WELFARE_NO_SHOW_GRACE_MINUTES after its
  window ended — `not_delivered:no_check_in`;
- an elder under the guarantee whose last completed visit is older than their rhythm —
  `rhythm_overdue`, once per rhythm period while it lasts (`rhythm:<elder>:<due day>:<n>`).
Failed visits (not home, refused, in hospital) are raised by the check-out itself
(`failed-visit:<request id>`) and are not raised again here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from dispatch.core.clock import local
from dispatch.core.config import get_settings
from dispatch.orders.lifecycle import OPEN_STATUSES, RequestStatus
from dispatch.orders.models import ServiceRequest
from dispatch.plans.models import PlanOccurrence
from dispatch.welfare import rhythm
from dispatch.welfare.models import WelfareCheck
from dispatch.welfare.service import WELFARE_ESCALATION, raise_welfare_check

# Older misses are history, not an emergency: a restarted scheduler does not raise a storm.
LOOK_BACK = timedelta(days=1)
MAX_PER_RUN = 200
KIND_TEXT = {"meal": "助餐", "home_care": "居家照护", "day_care": "日间照料", "visit": "探访"}
SLOT_TEXT = {"lunch": "午餐", "dinner": "晚餐"}


@dataclass(frozen=True)
class Cause:
    elder_id: int
    reason: str
    dedupe_key: str
    source_request_id: int | None = None
    detail: str = ""


def _service_text(request: ServiceRequest) -> str:
    """`12月3日午餐`: which booking it was, for the family's text."""
    when = local(request.window_start)
    what = SLOT_TEXT.get(request.details.get("slot", ""), "") or KIND_TEXT.get(request.kind, "")
    return f"{when.month}月{when.day}日{what}"


def _scheduled(session: Session, *conditions: ColumnElement[bool]) -> list[ServiceRequest]:
    stmt = (
        select(ServiceRequest)
        .join(PlanOccurrence, col(PlanOccurrence.request_id) == col(ServiceRequest.id))
        .where(*conditions)
        .order_by(col(ServiceRequest.window_start))
        .limit(MAX_PER_RUN)
    )
    return list(session.exec(stmt).all())


def unplaced_causes(session: Session, *, now: datetime) -> list[Cause]:
    lead = timedelta(minutes=get_settings().welfare_unplaced_lead_minutes)
    requests = _scheduled(
        session,
        col(ServiceRequest.status) == RequestStatus.ESCALATED,
        col(ServiceRequest.escalation_reason) != WELFARE_ESCALATION,
        col(ServiceRequest.window_start) <= now + lead,
        col(ServiceRequest.window_end) >= now - LOOK_BACK,
    )
    return [
        Cause(
            elder_id=r.elder_id,
            reason=f"not_accepted:{r.escalation_reason or 'unknown'}",
            dedupe_key=f"unplaced:{r.id}",
            source_request_id=r.id,
            detail=_service_text(r),
        )
        for r in requests
    ]


def no_show_causes(session: Session, *, now: datetime) -> list[Cause]:
    grace = timedelta(minutes=get_settings().welfare_no_show_grace_minutes)
    requests = _scheduled(
        session,
        col(ServiceRequest.status) == RequestStatus.ASSIGNED,
        col(ServiceRequest.window_end) < now - grace,
        col(ServiceRequest.window_end) >= now - LOOK_BACK,
    )
    return [
        Cause(
            elder_id=r.elder_id,
            reason="not_delivered:no_check_in",
            dedupe_key=f"no-show:{r.id}",
            source_request_id=r.id,
            detail=_service_text(r),
        )
        for r in requests
    ]


def elders_with_open_checks(session: Session) -> set[int]:
    """Elders someone is already being sent to look in on."""
    rows = session.exec(
        select(WelfareCheck.elder_id)
        .join(ServiceRequest, col(ServiceRequest.id) == col(WelfareCheck.request_id))
        .where(col(ServiceRequest.status).in_([s.value for s in OPEN_STATUSES]))
    ).all()
    return set(rows)


def rhythm_causes(session: Session, *, now: datetime) -> list[Cause]:
    busy = elders_with_open_checks(session)
    causes = []
    for row in rhythm.rhythm_status(session, as_of=now):
        if not row.overdue or row.elder_id in busy:
            continue
        period = row.overdue_days // row.rhythm_days  # raised again only once a whole rhythm passed
        causes.append(
            Cause(
                elder_id=row.elder_id,
                reason="rhythm_overdue",
                dedupe_key=f"rhythm:{row.elder_id}:{row.due_on.isoformat()}:{period}",
                detail=f"{row.days_since}天",
            )
        )
    return causes


def find_causes(session: Session, *, now: datetime) -> list[Cause]:
    """Every cause not raised yet, at most MAX_PER_RUN (the next run takes the rest)."""
    causes = unplaced_causes(session, now=now) + no_show_causes(session, now=now)
    causes += rhythm_causes(session, now=now)
    keys = [c.dedupe_key for c in causes]
    raised: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        raised |= set(
            session.exec(select(WelfareCheck.dedupe_key).where(col(WelfareCheck.dedupe_key).in_(chunk)))
        )
    return [c for c in causes if c.dedupe_key not in raised][:MAX_PER_RUN]


def raise_cause(session: Session, cause: Cause) -> bool:
    """Raise one cause in the caller's transaction; False if it was raised already."""
    check = raise_welfare_check(
        session,
        elder_id=cause.elder_id,
        reason=cause.reason,
        dedupe_key=cause.dedupe_key,
        source_request_id=cause.source_request_id,
        detail=cause.detail,
    )
    return check is not None
