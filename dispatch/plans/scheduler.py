"""Turn plans into requests ahead of time, each occurrence exactly once.

One transaction per occurrence: the plan row is locked, its status and the elder re-checked,
the request filed through the normal intake service (`channel: "scheduled"`, so it is matched,
offered and escalated like any other), and the occurrence row written. The occurrence's unique
key (plan, day) is the guarantee: a second scheduler that decided the same thing at the same
moment fails on it and rolls its own request back, and a process killed mid-way leaves either
the whole occurrence or nothing of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatch.core import faults
from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.errors import DomainError
from dispatch.orders import service as request_service
from dispatch.orders.models import Channel, RequestKind, ServiceRequest
from dispatch.orders.schemas import RequestCreate, RequestDetails
from dispatch.plans import calendar
from dispatch.plans import service as plan_service
from dispatch.plans.models import PlanOccurrence, PlanStatus, ServicePlan

log = logging.getLogger(__name__)


@dataclass
class ScheduleResult:
    created: int = 0
    already: int = 0  # another run (or an earlier one) had it
    refused: int = 0  # intake refused it (e.g. the elder died meanwhile)
    plans_ended: int = 0
    request_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Due:
    plan_id: int
    day: date
    start: datetime
    end: datetime


def due_occurrences(session: Session, *, now: datetime, plan_id: int | None = None) -> list[Due]:
    """Occurrences of active plans inside the horizon that have no request yet."""
    horizon = timedelta(hours=get_settings().plan_horizon_hours)
    stmt = select(ServicePlan).where(ServicePlan.status == PlanStatus.ACTIVE)
    if plan_id is not None:
        stmt = stmt.where(ServicePlan.id == plan_id)
    plans = session.exec(stmt.order_by(col(ServicePlan.id))).all()
    if not plans:
        return []
    first_day = (now - timedelta(days=1)).date()
    existing = set(
        session.exec(
            select(col(PlanOccurrence.plan_id), col(PlanOccurrence.occurs_on)).where(
                col(PlanOccurrence.plan_id).in_([p.id for p in plans]),
                col(PlanOccurrence.occurs_on) >= first_day,
            )
        ).all()
    )
    due: list[Due] = []
    for plan in plans:
        assert plan.id is not None
        for day, start, end in calendar.due(plan_service.rule_of(plan), now=now, horizon=horizon):
            if (plan.id, day) not in existing:
                due.append(Due(plan.id, day, start, end))
    return due


def create_occurrence(session: Session, due: Due) -> int | None:
    """File one occurrence's request in the caller's transaction; None if there is nothing to do
    (the plan stopped, or the occurrence exists). IntegrityError if a concurrent run won."""
    plan = session.exec(select(ServicePlan).where(ServicePlan.id == due.plan_id).with_for_update()).first()
    if plan is None or plan.status != PlanStatus.ACTIVE:
        return None
    taken = session.exec(
        select(PlanOccurrence.id).where(
            PlanOccurrence.plan_id == due.plan_id, PlanOccurrence.occurs_on == due.day
        )
    ).first()
    if taken is not None:
        return None
    read, _ = request_service.create_request(
        session=session,
        principal=plan_service.scheduler_principal(session),
        request_in=RequestCreate(
            elder_id=plan.elder_id,
            kind=RequestKind(plan.kind),
            details=RequestDetails.model_validate(plan.details),
            window_start=due.start,
            window_end=due.end,
            channel=Channel.SCHEDULED,
            note=(plan.note or f"服务计划 #{plan.id}")[:500],
        ),
    )
    request = session.get(ServiceRequest, read.id)
    assert request is not None
    # The platform's own part of the details: which plan and day this request is.
    request.details = {**request.details, "plan_id": plan.id, "occurs_on": due.day.isoformat()}
    session.add(request)
    session.add(PlanOccurrence(plan_id=due.plan_id, occurs_on=due.day, request_id=read.id))
    session.flush()  # the unique key (plan, day) answers here
    faults.point("plans.occurrence_written")
    return read.id


def run(*, now: datetime | None = None, plan_id: int | None = None) -> ScheduleResult:
    """One scheduler run: end the plans of deceased elders, then file every due occurrence."""
    result = ScheduleResult()
    with session_scope() as session:
        result.plans_ended = plan_service.end_plans_of_deceased(session)
    now = now or utcnow()
    with session_scope(write=False) as session:
        due = due_occurrences(session, now=now, plan_id=plan_id)
    faults.point("plans.decided")  # a test holds two runs here, both having decided the same
    for item in due:
        try:
            with session_scope() as session:
                request_id = create_occurrence(session, item)
        except IntegrityError:
            result.already += 1  # a concurrent run committed this occurrence first
            continue
        except DomainError as exc:  # e.g. elder died between the plan check and intake
            log.warning("plan %s on %s not filed: %s", item.plan_id, item.day, exc.detail)
            result.refused += 1
            continue
        if request_id is None:
            result.already += 1
        else:
            result.created += 1
            result.request_ids.append(request_id)
            faults.point("plans.occurrence_committed")
    return result
