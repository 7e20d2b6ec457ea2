"""Check-in, check-out and feedback endpoints of API.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath
from dispatch.visits import service as visit_service
from dispatch.visits.schemas import CheckIn, CheckOut, FeedbackIn, FeedbackRead, VisitRead

router = APIRouter(prefix="/api/requests", tags=["visits"])

ProviderOnly = Annotated[Principal, require_roles(Role.PROVIDER)]
FeedbackGiver = Annotated[Principal, require_roles(Role.FAMILY, Role.OPERATOR, Role.ADMIN)]


@router.post("/{request_id}/check-in", response_model=VisitRead)
def check_in(request_id: IdPath, body: CheckIn, session: SessionDep, principal: ProviderOnly) -> VisitRead:
    """The assigned provider arrives: the request goes `in_service`; the position is kept and
    flagged `location_mismatch` if more than 300 m from the elder's address."""
    visit = visit_service.check_in(session=session, principal=principal, request_id=request_id, body=body)
    return visit_service.visit_read(visit)


@router.post("/{request_id}/check-out", response_model=VisitRead)
def check_out(request_id: IdPath, body: CheckOut, session: SessionDep, principal: ProviderOnly) -> VisitRead:
    """The visit ends: the request is `completed`."""
    visit = visit_service.check_out(session=session, principal=principal, request_id=request_id, body=body)
    return visit_service.visit_read(visit)


@router.post("/{request_id}/feedback", response_model=FeedbackRead, status_code=201)
def give_feedback(
    request_id: IdPath, body: FeedbackIn, session: SessionDep, principal: FeedbackGiver
) -> FeedbackRead:
    """Rate a completed request (1-5 and a comment)."""
    feedback = visit_service.give_feedback(
        session=session, principal=principal, request_id=request_id, body=body
    )
    return visit_service.feedback_read(feedback)
