"""Check-in, check-out (with the outcome of a visit that could not happen), "on the way", and
feedback. Every position, clock and duration is kept as recorded; what looks wrong is flagged for
an operator (dispatch/visits/evv.py), never silently accepted or refused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from dispatch.core.auth import Principal, Role
from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.errors import Conflict, NotFound
from dispatch.elders.models import Elder
from dispatch.notify import rules as sms_rules
from dispatch.orders import service as request_service
from dispatch.orders.lifecycle import RequestStatus, transition
from dispatch.orders.models import ServiceRequest
from dispatch.visits import evv
from dispatch.visits.models import Departure, Feedback, Visit, VisitFlag, VisitOutcome
from dispatch.visits.schemas import CheckIn, CheckOut, FeedbackIn, FeedbackRead, OnTheWay
from dispatch.welfare.service import raise_welfare_check
from services.models import Provider

VISIT_FAILED = "visit_failed"
# What the family's welfare SMS says happened (short, no health detail beyond the outcome).
OUTCOME_TEXT = {
    VisitOutcome.NOT_HOME: "老人不在家",
    VisitOutcome.REFUSED: "老人拒绝服务",
    VisitOutcome.IN_HOSPITAL: "老人住院",
}
DAY_CARE_ABSENT_TEXT = "老人未到日间照料中心"


def serves(principal: Principal, request: ServiceRequest) -> bool:
    """Is this provider account the one the job is assigned to? An account bound to a caregiver
    serves only that caregiver's jobs."""
    if principal.role != Role.PROVIDER or request.provider_id is None:
        return False
    if request.provider_id != principal.provider_id:
        return False
    return principal.caregiver_id is None or request.caregiver_id == principal.caregiver_id


def assigned_request(session: Session, principal: Principal, request_id: int) -> ServiceRequest:
    """The request, if the caller serves it; unknown and foreign ids answer alike (404)."""
    request = request_service.get_request(session=session, principal=principal, request_id=request_id)
    if not serves(principal, request):
        raise NotFound(f"request {request_id} not found")
    return request


def place_of(session: Session, request: ServiceRequest) -> evv.Place:
    elder = session.get(Elder, request.elder_id)
    provider = session.get(Provider, request.provider_id) if request.provider_id else None
    assert elder is not None and provider is not None
    return evv.place_for(
        request.kind, request.details, home=(elder.lat, elder.lon), site=(provider.lat, provider.lon)
    )


def _facts(visit: Visit) -> evv.Facts:
    return evv.Facts(
        kind=visit.kind,
        outcome=visit.outcome,
        check_in_at=visit.check_in_at,
        check_in_distance_m=visit.check_in_distance_m,
        check_in_device_at=visit.check_in_device_at,
        check_out_at=visit.check_out_at,
        check_out_distance_m=visit.check_out_distance_m,
        check_out_device_at=visit.check_out_device_at,
    )


def judge(visit: Visit) -> None:
    """Flags, review state and `verified`, recomputed from the recorded facts."""
    visit.flags = evv.flags_for(_facts(visit), evv.Limits.of(get_settings()))
    visit.flagged = bool(visit.flags)
    review = evv.review_of(visit.flags, None)
    visit.review = review
    visit.verified = evv.is_verified(visit.outcome, review, closed=visit.check_out_at is not None)


def _open_visit(
    session: Session,
    request: ServiceRequest,
    *,
    lat: float,
    lon: float,
    device_at: datetime | None,
    at: datetime | None = None,
) -> Visit:
    assert request.id is not None and request.provider_id is not None
    place = place_of(session, request)
    visit = Visit(
        request_id=request.id,
        elder_id=request.elder_id,
        provider_id=request.provider_id,
        caregiver_id=request.caregiver_id,
        kind=request.kind,
        check_in_at=at or utcnow(),
        check_in_lat=lat,
        check_in_lon=lon,
        check_in_distance_m=place.distance_m(lat, lon),
        check_in_device_at=device_at,
        place=place.kind,
        place_lat=place.lat,
        place_lon=place.lon,
    )
    judge(visit)
    session.add(visit)
    session.flush()
    return visit


def check_in(*, session: Session, principal: Principal, request_id: int, body: CheckIn) -> Visit:
    request = assigned_request(session, principal, request_id)
    if request.status != RequestStatus.ASSIGNED:
        raise Conflict(f"request {request_id} is {request.status}; check-in needs an assigned request")
    visit = _open_visit(session, request, lat=body.lat, lon=body.lon, device_at=body.device_at)
    transition(
        session,
        request,
        RequestStatus.IN_SERVICE,
        data={
            "visit_id": visit.id,
            "location_mismatch": VisitFlag.LOCATION_MISMATCH in visit.flags,
            "flags": visit.flags,
            "place": visit.place,
        },
    )
    return visit


def _recorded_place(session: Session, request: ServiceRequest, visit: Visit) -> evv.Place:
    """Both ends are measured from the place fixed at check-in (an address edited meanwhile
    does not move it); visits recorded before places were kept get today's."""
    if visit.place_lat is None or visit.place_lon is None:
        return place_of(session, request)
    return evv.Place(evv.VisitPlace(visit.place), visit.place_lat, visit.place_lon)


def check_out(*, session: Session, principal: Principal, request_id: int, body: CheckOut) -> Visit:
    """End the visit: completed, or (any other outcome) a visit that could not happen."""
    request = assigned_request(session, principal, request_id)
    failed = body.outcome != VisitOutcome.COMPLETED
    now = utcnow()
    if request.status == RequestStatus.IN_SERVICE:
        visit = session.exec(select(Visit).where(Visit.request_id == request_id)).one()
    elif request.status == RequestStatus.ASSIGNED and failed:
        # At the door, nobody opened: the visit starts and ends here, and says so.
        visit = _open_visit(session, request, lat=body.lat, lon=body.lon, device_at=body.device_at, at=now)
    else:
        need = "a visit in service" if not failed else "an assigned job or a visit in service"
        raise Conflict(f"request {request_id} is {request.status}; this check-out needs {need}")
    place = _recorded_place(session, request, visit)
    visit.check_out_at = now
    visit.check_out_lat, visit.check_out_lon = body.lat, body.lon
    visit.check_out_distance_m = place.distance_m(body.lat, body.lon)
    visit.check_out_device_at = body.device_at
    visit.summary = body.summary
    visit.outcome = body.outcome
    judge(visit)
    session.add(visit)
    session.flush()
    if failed:
        _not_served(session, request, visit)
    else:
        transition(
            session,
            request,
            RequestStatus.COMPLETED,
            data={
                "visit_id": visit.id,
                "location_mismatch": VisitFlag.LOCATION_MISMATCH in visit.flags,
                "flags": visit.flags,
                "verified": visit.verified,
            },
        )
    return visit


def _not_served(session: Session, request: ServiceRequest, visit: Visit) -> None:
    """A visit that could not happen is not a completed service (nor counted, billed or
    texted as one): the request is cancelled with the outcome in the event, and an operator
    gets a welfare check to find out how the elder is."""
    assert request.id is not None
    transition(
        session,
        request,
        RequestStatus.CANCELLED,
        data={
            "reason": VISIT_FAILED,
            "outcome": visit.outcome,
            "visit_id": visit.id,
            "by": Role.PROVIDER.value,
            "flags": visit.flags,
        },
    )
    outcome = VisitOutcome(visit.outcome)
    detail = DAY_CARE_ABSENT_TEXT if request.kind == "day_care" and outcome == VisitOutcome.NOT_HOME else ""
    raise_welfare_check(
        session,
        elder_id=request.elder_id,
        reason=f"failed_visit:{outcome.value}",
        dedupe_key=f"failed-visit:{request.id}",
        source_request_id=request.id,
        detail=detail or OUTCOME_TEXT.get(outcome, ""),
    )


def on_the_way(*, session: Session, principal: Principal, request_id: int, body: OnTheWay) -> Departure:
    """The caregiver sets off: the family is texted once; asking again answers the same record."""
    request = assigned_request(session, principal, request_id)
    existing = session.exec(select(Departure).where(Departure.request_id == request_id)).first()
    if existing is not None:
        return existing
    if request.status != RequestStatus.ASSIGNED:
        raise Conflict(f"request {request_id} is {request.status}; 'on the way' is for an assigned job")
    assert request.id is not None and request.provider_id is not None
    departure = Departure(
        request_id=request.id,
        provider_id=request.provider_id,
        caregiver_id=request.caregiver_id,
        user_id=principal.id,
        eta_minutes=body.eta_minutes,
    )
    try:
        with session.begin_nested():  # a concurrent twin wins the unique index: answer its record
            session.add(departure)
    except IntegrityError:
        twin = session.exec(select(Departure).where(Departure.request_id == request_id)).first()
        if twin is None:
            raise
        return twin
    sms_rules.on_the_way(session, request, eta_minutes=body.eta_minutes)
    return departure


def give_feedback(*, session: Session, principal: Principal, request_id: int, body: FeedbackIn) -> Feedback:
    """A rating of a completed request, kept as the provider's record (the matcher reads it)."""
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


def feedback_read(feedback: Feedback) -> FeedbackRead:
    return FeedbackRead.model_validate(feedback, from_attributes=True)
