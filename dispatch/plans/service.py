"""Service plans: create, read, pause, resume, end. Creating their requests is scheduler.py's job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role, User
from dispatch.core.clock import local, utcnow
from dispatch.core.errors import Conflict, NotFound
from dispatch.core.events import lock_event_order
from dispatch.core.jobs import JobName, QueueName
from dispatch.core.outbox import add_job
from dispatch.elders import service as elder_service
from dispatch.elders.models import Elder
from dispatch.orders import offers
from dispatch.orders.lifecycle import RequestStatus, transition
from dispatch.orders.models import ServiceRequest
from dispatch.plans import calendar
from dispatch.plans.models import PlanKind, PlanOccurrence, PlanStatus, ServicePlan
from dispatch.plans.schemas import OccurrenceRead, PlanCreate, PlanRead

SYSTEM_USERNAME = "scheduler"
_NO_PASSWORD = "!scheduler-system-account-cannot-sign-in"
# Open requests a pause or an end withdraws (a visit already in service runs to its end).
_WITHDRAWABLE = (RequestStatus.QUEUED, RequestStatus.OFFERED, RequestStatus.ESCALATED, RequestStatus.ASSIGNED)


def scheduler_principal(session: Session) -> Principal:
    """The account scheduled requests are filed as (created on first use; inactive, so nobody
    can sign in with it)."""
    user = session.exec(select(User).where(User.username == SYSTEM_USERNAME)).first()
    if user is None:
        user = User(
            username=SYSTEM_USERNAME,
            password_hash=_NO_PASSWORD,
            role=Role.OPERATOR,
            display_name="服务计划",
            active=False,
        )
        try:
            with session.begin_nested():
                session.add(user)
        except IntegrityError:  # a concurrent run created it first
            user = session.exec(select(User).where(User.username == SYSTEM_USERNAME)).one()
    assert user.id is not None
    return Principal(user.id, SYSTEM_USERNAME, Role.OPERATOR)


def rule_of(plan: ServicePlan) -> calendar.PlanRule:
    return calendar.PlanRule(
        kind=plan.kind,
        weekdays=tuple(plan.weekdays),
        every_days=plan.every_days,
        start_time=plan.start_time,
        end_time=plan.end_time,
        starts_on=plan.starts_on,
        ends_on=plan.ends_on,
    )


def wake_scheduler(session: Session, plan_id: int | None) -> None:
    """Owe a scheduler run right after this commit, so a new or resumed plan does not wait for
    the next cron tick (the cron run would find it anyway)."""
    add_job(session, JobName.SCHEDULE_PLANS, queue=QueueName.MAINTENANCE, plan_id=plan_id)


def create_plan(*, session: Session, principal: Principal, plan_in: PlanCreate) -> ServicePlan:
    elder = elder_service.get_elder(session=session, principal=principal, elder_id=plan_in.elder_id)
    if elder.deceased_on is not None:
        raise Conflict(f"elder {elder.id} is recorded as deceased on {elder.deceased_on.isoformat()}")
    if plan_in.kind == PlanKind.MEAL:
        start, end = calendar.MEAL_SLOTS[plan_in.slot or "lunch"]
        details: dict[str, object] = {"slot": plan_in.slot or "lunch", "delivery": bool(plan_in.delivery)}
    else:
        default = calendar.DEFAULT_TIMES[plan_in.kind.value]
        start, end = plan_in.start_time or default[0], plan_in.end_time or default[1]
        details = {"skills": [s.value for s in plan_in.skills]} if plan_in.kind == PlanKind.HOME_CARE else {}
    now = utcnow()
    starts_on = plan_in.starts_on or local(now).date()
    if plan_in.ends_on is not None and plan_in.ends_on < starts_on:
        raise Conflict("ends_on is before the plan starts")
    plan = ServicePlan(
        elder_id=plan_in.elder_id,
        kind=plan_in.kind,
        weekdays=list(plan_in.weekdays),
        every_days=plan_in.every_days,
        details=details,
        start_time=start,
        end_time=end,
        starts_on=starts_on,
        ends_on=plan_in.ends_on,
        note=plan_in.note,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    session.flush()
    wake_scheduler(session, plan.id)
    return plan


def get_plan(*, session: Session, plan_id: int, for_update: bool = False) -> ServicePlan:
    stmt = select(ServicePlan).where(ServicePlan.id == plan_id)
    if for_update:  # serialises with the scheduler, which locks the plan row the same way
        stmt = stmt.with_for_update()
    plan = session.exec(stmt).first()
    if plan is None:
        raise NotFound(f"plan {plan_id} not found")
    return plan


def list_plans(
    *,
    session: Session,
    elder_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    township: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[ServicePlan]:
    stmt = select(ServicePlan)
    if township is not None:
        stmt = stmt.join(Elder, col(Elder.id) == col(ServicePlan.elder_id)).where(Elder.township == township)
    for column, value in (
        (ServicePlan.elder_id, elder_id),
        (ServicePlan.status, status),
        (ServicePlan.kind, kind),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    stmt = stmt.order_by(col(ServicePlan.id).desc()).offset(offset).limit(limit)
    return session.exec(stmt).all()


def _set_status(plan: ServicePlan, status: PlanStatus, reason: str, session: Session) -> None:
    plan.status = status
    plan.status_reason = reason
    plan.updated_at = utcnow()
    session.add(plan)
    session.flush()


def pause_plan(*, session: Session, plan_id: int, reason: str) -> ServicePlan:
    plan = get_plan(session=session, plan_id=plan_id, for_update=True)
    if plan.status != PlanStatus.ACTIVE:
        raise Conflict(f"plan {plan_id} is {plan.status}; only an active plan can be paused")
    _set_status(plan, PlanStatus.PAUSED, reason, session)
    withdraw_future(session, plan, reason=f"plan paused: {reason}" if reason else "plan paused")
    return plan


def resume_plan(*, session: Session, plan_id: int, reason: str = "") -> ServicePlan:
    plan = get_plan(session=session, plan_id=plan_id, for_update=True)
    if plan.status != PlanStatus.PAUSED:
        raise Conflict(f"plan {plan_id} is {plan.status}; only a paused plan can be resumed")
    elder = session.get(Elder, plan.elder_id)
    if elder is not None and elder.deceased_on is not None:
        raise Conflict(f"elder {elder.id} is recorded as deceased on {elder.deceased_on.isoformat()}")
    _set_status(plan, PlanStatus.ACTIVE, reason, session)
    wake_scheduler(session, plan.id)
    return plan


def end_plan(*, session: Session, plan_id: int, reason: str) -> ServicePlan:
    plan = get_plan(session=session, plan_id=plan_id, for_update=True)
    if plan.status == PlanStatus.ENDED:
        raise Conflict(f"plan {plan_id} has already ended")
    close_plan(session, plan, reason=reason or "ended")
    return plan


def close_plan(session: Session, plan: ServicePlan, *, reason: str) -> None:
    """End a plan today and withdraw what it had booked ahead."""
    today = local(utcnow()).date()
    if plan.ends_on is None or plan.ends_on > today:
        plan.ends_on = max(today, plan.starts_on)
    _set_status(plan, PlanStatus.ENDED, reason, session)
    withdraw_future(session, plan, reason=f"plan ended: {reason}")


def withdraw_future(session: Session, plan: ServicePlan, *, reason: str, now: datetime | None = None) -> int:
    """Cancel the open requests of occurrences still ahead and forget those occurrences, so a
    resumed plan books those days again. Returns how many requests were cancelled."""
    now = now or utcnow()
    lock_event_order(session)  # read after it: what is read stays so until the commit (no 409)
    rows = session.exec(
        select(PlanOccurrence, ServiceRequest)
        .join(ServiceRequest, col(ServiceRequest.id) == col(PlanOccurrence.request_id))
        .where(PlanOccurrence.plan_id == plan.id, col(ServiceRequest.window_start) > now)
    ).all()
    cancelled = 0
    for occurrence, request in rows:
        if request.status in _WITHDRAWABLE:
            assert request.id is not None
            offers.withdraw_pending(session, request_id=request.id, reason=reason[:200])
            transition(session, request, RequestStatus.CANCELLED, data={"reason": reason, "by": "plan"})
            cancelled += 1
        if request.status == RequestStatus.CANCELLED:
            session.execute(delete(PlanOccurrence).where(col(PlanOccurrence.id) == occurrence.id))
    return cancelled


def end_plans_of_deceased(session: Session) -> int:
    """An elder recorded as deceased receives nothing more: their plans end, bookings withdrawn."""
    plans = session.exec(
        select(ServicePlan)
        .join(Elder, col(Elder.id) == col(ServicePlan.elder_id))
        .where(col(ServicePlan.status) != PlanStatus.ENDED, col(Elder.deceased_on).is_not(None))
        .with_for_update(of=ServicePlan)  # type: ignore[arg-type]
    ).all()
    for plan in plans:
        close_plan(session, plan, reason="deceased")
    return len(plans)


def plan_reads(session: Session, plans: Sequence[ServicePlan]) -> list[PlanRead]:
    elder_ids = {p.elder_id for p in plans}
    elders = {
        e.id: e for e in session.exec(select(Elder).where(col(Elder.id).in_(elder_ids))).all()
    } if elder_ids else {}  # fmt: skip
    now = utcnow()
    reads = []
    for p in plans:
        elder = elders.get(p.elder_id)
        active = p.status == PlanStatus.ACTIVE
        reads.append(
            PlanRead(
                id=p.id or 0,
                elder_id=p.elder_id,
                elder_name=elder.name if elder else "",
                township=elder.township if elder else "",
                kind=p.kind,  # type: ignore[arg-type]
                weekdays=list(p.weekdays),
                every_days=p.every_days,
                slot=p.details.get("slot"),
                delivery=p.details.get("delivery"),
                skills=list(p.details.get("skills", [])),
                start_time=p.start_time,
                end_time=p.end_time,
                starts_on=p.starts_on,
                ends_on=p.ends_on,
                status=p.status,  # type: ignore[arg-type]
                status_reason=p.status_reason,
                note=p.note,
                next_on=calendar.next_occurrence(rule_of(p), after=now) if active else None,
                created_at=p.created_at,
                updated_at=p.updated_at,
            )
        )
    return reads


def occurrences(*, session: Session, plan_id: int, limit: int = 30) -> list[OccurrenceRead]:
    rows = session.exec(
        select(PlanOccurrence, ServiceRequest)
        .join(ServiceRequest, col(ServiceRequest.id) == col(PlanOccurrence.request_id))
        .where(PlanOccurrence.plan_id == plan_id)
        .order_by(col(PlanOccurrence.occurs_on).desc())
        .limit(limit)
    ).all()
    return [
        OccurrenceRead(
            plan_id=o.plan_id,
            occurs_on=o.occurs_on,
            request_id=o.request_id,
            status=r.status,
            window_start=r.window_start,
            window_end=r.window_end,
            escalation_reason=r.escalation_reason,
        )
        for o, r in rows
    ]
