"""Visit endpoints on a request: check-in, check-out (API.md), "on the way", the visit record,
and feedback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath
from dispatch.visits import records
from dispatch.visits import service as visit_service
from dispatch.visits.schemas import (
    CheckIn,
    CheckOut,
    DepartureRead,
    FeedbackIn,
    FeedbackRead,
    OnTheWay,
    VisitRead,
)

router = APIRouter(prefix="/api/requests", tags=["visits"])

ProviderOnly = Annotated[Principal, require_roles(Role.PROVIDER)]
FeedbackGiver = Annotated[Principal, require_roles(Role.FAMILY, Role.OPERATOR, Role.ADMIN)]
VisitReader = Annotated[Principal, require_roles(Role.PROVIDER, Role.OPERATOR, Role.MANAGER, Role.ADMIN)]


@router.post("/{request_id}/check-in", response_model=VisitRead)
def check_in(request_id: IdPath, body: CheckIn, session: SessionDep, principal: ProviderOnly) -> VisitRead:
    """The assigned provider arrives: the request goes `in_service`. The position is kept and
    flagged `location_mismatch` if more than 300 m from where the service happens (the elder's
    home; the provider's site for day care and meals eaten in); a phone clock more than 5 minutes
    off the server's is flagged `clock_skew`."""
    visit = visit_service.check_in(session=session, principal=principal, request_id=request_id, body=body)
    return records.visit_reads(session, principal, [visit])[0]


@router.post("/{request_id}/check-out", response_model=VisitRead)
def check_out(request_id: IdPath, body: CheckOut, session: SessionDep, principal: ProviderOnly) -> VisitRead:
    """The visit ends: `completed` (flagged `too_short` under the kind's minimum), or, with
    another `outcome` (not_home, refused, in_hospital), `cancelled` with the outcome in the event
    and a welfare check raised for the operators."""
    visit = visit_service.check_out(session=session, principal=principal, request_id=request_id, body=body)
    return records.visit_reads(session, principal, [visit])[0]


@router.post("/{request_id}/on-the-way", response_model=DepartureRead)
def on_the_way(
    request_id: IdPath, session: SessionDep, principal: ProviderOnly, body: OnTheWay | None = None
) -> DepartureRead:
    """The caregiver sets off to an assigned job: the family is texted, once (a repeat answers
    the first record and sends nothing)."""
    departure = visit_service.on_the_way(
        session=session, principal=principal, request_id=request_id, body=body or OnTheWay()
    )
    return DepartureRead(request_id=departure.request_id, at=departure.at, eta_minutes=departure.eta_minutes)


@router.get("/{request_id}/visit", response_model=VisitRead | None)
def get_request_visit(
    request_id: IdPath, request: Request, session: SessionDep, principal: VisitReader
) -> VisitRead | None:
    """The visit record of a request in the caller's scope, with its corrections; null while
    nobody has checked in."""
    visit = records.visit_of_request(session=session, principal=principal, request_id=request_id)
    if visit is None:
        return None
    audit.record_read(request, principal, [visit.elder_id], f"visit of request {request_id}")
    return records.visit_reads(session, principal, [visit])[0]


@router.post("/{request_id}/feedback", response_model=FeedbackRead, status_code=201)
def give_feedback(
    request_id: IdPath, body: FeedbackIn, session: SessionDep, principal: FeedbackGiver
) -> FeedbackRead:
    """Rate a completed request (1-5 and a comment); it becomes part of the provider's record."""
    feedback = visit_service.give_feedback(
        session=session, principal=principal, request_id=request_id, body=body
    )
    return visit_service.feedback_read(feedback)
