"""Check-in, check-out and feedback. A position far from the elder's address is kept and
flagged, never silently accepted or refused."""

from __future__ import annotations

from sqlmodel import Session, select

from dispatch.core.auth import Principal, Role
from dispatch.core.clock import utcnow
from dispatch.core.errors import Conflict, NotFound
from dispatch.core.geo import haversine_km
from dispatch.elders.models import Elder
from dispatch.orders import service as request_service
from dispatch.orders.lifecycle import RequestStatus, transition
from dispatch.orders.models import ServiceRequest
from dispatch.visits.models import Feedback, Visit
from dispatch.visits.schemas import CheckIn, CheckOut, FeedbackIn, FeedbackRead, VisitRead

LOCATION_MISMATCH_M = 300.0


def _assigned_request(session: Session, principal: Principal, request_id: int) -> ServiceRequest:
    """The request, if the caller is the provider it is assigned to."""
    request = request_service.get_request(session=session, principal=principal, request_id=request_id)
    if principal.role != Role.PROVIDER or request.provider_id != principal.provider_id:
        raise NotFound(f"request {request_id} not found")
    return request


def _distance_m(session: Session, elder_id: int, lat: float, lon: float) -> float:
    elder = session.get(Elder, elder_id)
    assert elder is not None
    return round(haversine_km(elder.lat, elder.lon, lat, lon) * 1000, 1)


def check_in(*, session: Session, principal: Principal, request_id: int, body: CheckIn) -> Visit:
    request = _assigned_request(session, principal, request_id)
    if request.status != RequestStatus.ASSIGNED:
        raise Conflict(f"request {request_id} is {request.status}; check-in needs an assigned request")
    distance = _distance_m(session, request.elder_id, body.lat, body.lon)
    assert request.id is not None and request.provider_id is not None
    visit = Visit(
        request_id=request.id,
        elder_id=request.elder_id,
        provider_id=request.provider_id,
        caregiver_id=request.caregiver_id,
        kind=request.kind,
        check_in_at=utcnow(),
        check_in_lat=body.lat,
        check_in_lon=body.lon,
        check_in_distance_m=distance,
        flags=["location_mismatch"] if distance > LOCATION_MISMATCH_M else [],
    )
    session.add(visit)
    session.flush()
    transition(
        session,
        request,
        RequestStatus.IN_SERVICE,
        data={"visit_id": visit.id, "location_mismatch": distance > LOCATION_MISMATCH_M},
    )
    return visit


def check_out(*, session: Session, principal: Principal, request_id: int, body: CheckOut) -> Visit:
    request = _assigned_request(session, principal, request_id)
    if request.status != RequestStatus.IN_SERVICE:
        raise Conflict(f"request {request_id} is {request.status}; check-out needs a visit in service")
    visit = session.exec(select(Visit).where(Visit.request_id == request_id)).one()
    distance = _distance_m(session, request.elder_id, body.lat, body.lon)
    visit.check_out_at = utcnow()
    visit.check_out_lat, visit.check_out_lon = body.lat, body.lon
    visit.check_out_distance_m = distance
    visit.summary = body.summary
    if distance > LOCATION_MISMATCH_M and "location_mismatch" not in visit.flags:
        visit.flags = [*visit.flags, "location_mismatch"]
    visit.verified = not visit.flags
    session.add(visit)
    session.flush()
    transition(
        session,
        request,
        RequestStatus.COMPLETED,
        data={"visit_id": visit.id, "location_mismatch": "location_mismatch" in visit.flags},
    )
    return visit


def give_feedback(*, session: Session, principal: Principal, request_id: int, body: FeedbackIn) -> Feedback:
    request = request_service.get_request(session=session, principal=principal, request_id=request_id)
    if principal.role not in (Role.FAMILY, Role.OPERATOR, Role.ADMIN):
        raise NotFound(f"request {request_id} not found")
    if request.status != RequestStatus.COMPLETED:
        raise Conflict(f"request {request_id} is {request.status}; feedback is for completed requests")
    if session.exec(select(Feedback).where(Feedback.request_id == request_id)).first() is not None:
        raise Conflict(f"request {request_id} already has feedback")
    assert request.id is not None
    feedback = Feedback(
        request_id=request.id,
        provider_id=request.provider_id,
        user_id=principal.id,
        rating=body.rating,
        comment=body.comment,
    )
    session.add(feedback)
    session.flush()
    return feedback


def visit_read(visit: Visit) -> VisitRead:
    assert visit.id is not None
    return VisitRead.model_validate(visit, from_attributes=True)


def feedback_read(feedback: Feedback) -> FeedbackRead:
    return FeedbackRead.model_validate(feedback, from_attributes=True)
