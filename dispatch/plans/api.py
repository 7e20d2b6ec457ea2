"""Service plan endpoints: operators (and managers, admin) create, pause, resume and end plans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath, IdQuery, Offset, Township
from dispatch.plans import service as plan_service
from dispatch.plans.models import PlanKind, PlanStatus
from dispatch.plans.schemas import OccurrenceRead, PlanAction, PlanCreate, PlanRead

router = APIRouter(prefix="/api/plans", tags=["plans"])
Staff = Annotated[Principal, require_roles(Role.OPERATOR, Role.MANAGER, Role.ADMIN)]


@router.post("", response_model=PlanRead, status_code=201)
def create_plan(plan_in: PlanCreate, session: SessionDep, principal: Staff) -> PlanRead:
    """A recurring service; its requests are created ahead of time by the scheduler."""
    plan = plan_service.create_plan(session=session, principal=principal, plan_in=plan_in)
    return plan_service.plan_reads(session, [plan])[0]


@router.get("", response_model=list[PlanRead])
def list_plans(
    http: Request,
    session: SessionDep,
    principal: Staff,
    elder_id: IdQuery = None,
    status: PlanStatus | None = None,
    kind: PlanKind | None = None,
    township: Township | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[PlanRead]:
    """Plans, newest first."""
    plans = plan_service.list_plans(
        session=session,
        elder_id=elder_id,
        status=status,
        kind=kind,
        township=township,
        limit=limit,
        offset=offset,
    )
    reads = plan_service.plan_reads(session, plans)
    audit.record_read(http, principal, (p.elder_id for p in reads), "plans")
    return reads


@router.get("/{plan_id}", response_model=PlanRead)
def get_plan(plan_id: IdPath, http: Request, session: SessionDep, principal: Staff) -> PlanRead:
    read = plan_service.plan_reads(session, [plan_service.get_plan(session=session, plan_id=plan_id)])[0]
    audit.record_read(http, principal, [read.elder_id], f"plan {plan_id}")
    return read


@router.get("/{plan_id}/occurrences", response_model=list[OccurrenceRead])
def plan_occurrences(
    plan_id: IdPath,
    http: Request,
    session: SessionDep,
    principal: Staff,
    limit: Annotated[int, Query(ge=1, le=200)] = 30,
) -> list[OccurrenceRead]:
    """The requests this plan created, newest day first, with their current status."""
    plan = plan_service.get_plan(session=session, plan_id=plan_id)
    audit.record_read(http, principal, [plan.elder_id], f"plan {plan_id} occurrences")
    return plan_service.occurrences(session=session, plan_id=plan_id, limit=limit)


@router.post("/{plan_id}/pause", response_model=PlanRead)
def pause_plan(plan_id: IdPath, session: SessionDep, _: Staff, body: PlanAction | None = None) -> PlanRead:
    """Stop creating requests; what was already booked ahead is cancelled. 409 unless active."""
    plan = plan_service.pause_plan(session=session, plan_id=plan_id, reason=body.reason if body else "")
    return plan_service.plan_reads(session, [plan])[0]


@router.post("/{plan_id}/resume", response_model=PlanRead)
def resume_plan(plan_id: IdPath, session: SessionDep, _: Staff, body: PlanAction | None = None) -> PlanRead:
    """Create requests again from now on. 409 unless paused."""
    plan = plan_service.resume_plan(session=session, plan_id=plan_id, reason=body.reason if body else "")
    return plan_service.plan_reads(session, [plan])[0]


@router.post("/{plan_id}/end", response_model=PlanRead)
def end_plan(plan_id: IdPath, session: SessionDep, _: Staff, body: PlanAction | None = None) -> PlanRead:
    """End the plan today; what was booked ahead is cancelled. 409 if already ended."""
    plan = plan_service.end_plan(session=session, plan_id=plan_id, reason=body.reason if body else "")
    return plan_service.plan_reads(session, [plan])[0]
