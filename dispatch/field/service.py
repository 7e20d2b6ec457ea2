"""The provider's day, read for its phone: its offers, today's jobs in time order, the meal counts
of a canteen and the attendees of a day-care center. A provider account sees only its provider's
work; one bound to a caregiver only that caregiver's. Personal data is cut to what the job needs,
here on the server (dispatch/field/schemas.py says what and why). Every answer is audited by
the endpoint (dispatch/field/api.py), as every read of elder data is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlmodel import Session, col, or_, select

from dispatch.core import audit
from dispatch.core.auth import Principal, mask_name, mask_phone
from dispatch.core.clock import local, utcnow
from dispatch.core.errors import Conflict
from dispatch.core.events import last_seq
from dispatch.elders.models import Elder
from dispatch.field.schemas import (
    Attendance,
    FieldCaregiver,
    FieldDay,
    FieldJob,
    FieldOffer,
    FieldProvider,
    JobCare,
    JobElder,
    JobVisit,
    MealSlot,
    PhoneRead,
)
from dispatch.orders import offers as offer_service
from dispatch.orders.lifecycle import RequestStatus
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from dispatch.visits import evv, loaders
from dispatch.visits.models import Departure, Visit, VisitOutcome, VisitPlace
from dispatch.visits.records import day_start
from dispatch.visits.service import assigned_request
from services.models import Caregiver, Provider

OPEN = (RequestStatus.ASSIGNED, RequestStatus.IN_SERVICE)
CLOSED = (RequestStatus.COMPLETED, RequestStatus.CANCELLED)
# An offer that ended this recently is still listed, so the page can say why it went away.
RECENTLY_ENDED = timedelta(minutes=15)
MAX_JOBS = 500


def _own(stmt, principal: Principal, provider_col, caregiver_col):  # type: ignore[no-untyped-def]
    stmt = stmt.where(provider_col == principal.provider_id)
    if principal.caregiver_id is not None:
        stmt = stmt.where(caregiver_col == principal.caregiver_id)
    return stmt


# ---- offers -----------------------------------------------------------------------------


def list_offers(*, session: Session, principal: Principal) -> tuple[list[FieldOffer], set[int]]:
    """Pending offers (soonest deadline first), then those declined, expired or withdrawn in
    the last minutes, with why; and whose elders they name (for the audit log)."""
    ended_after = utcnow() - RECENTLY_ENDED
    # Accepted ones are jobs now (listed by today()), so they are left out here.
    ended = (OfferStatus.DECLINED, OfferStatus.EXPIRED, OfferStatus.WITHDRAWN)
    stmt = _own(select(Offer), principal, Offer.provider_id, Offer.caregiver_id).where(
        or_(
            col(Offer.status) == OfferStatus.PENDING,
            col(Offer.status).in_(ended) & (col(Offer.responded_at) >= ended_after),
        )
    )
    rows = session.exec(stmt.order_by(col(Offer.id).desc()).limit(200)).all()
    rows = sorted(rows, key=lambda o: (o.status != OfferStatus.PENDING, o.expires_at))
    reads = offer_service.offer_reads(session, rows)
    request_ids = {o.request_id for o in rows}
    stmt = select(ServiceRequest.elder_id).where(col(ServiceRequest.id).in_(request_ids))
    elder_ids = set(session.exec(stmt).all()) if request_ids else set()
    offers = [
        FieldOffer(**r.model_dump(), responded_at=o.responded_at) for r, o in zip(reads, rows, strict=True)
    ]
    return offers, elder_ids


# ---- jobs -------------------------------------------------------------------------------


def _day_jobs(session: Session, principal: Principal, day: date) -> Sequence[ServiceRequest]:
    start, end = day_start(day), day_start(day + timedelta(days=1))
    in_day = (col(ServiceRequest.window_start) >= start) & (col(ServiceRequest.window_start) < end)
    closed_in_day = (col(ServiceRequest.closed_at) >= start) & (col(ServiceRequest.closed_at) < end)
    stmt = _own(select(ServiceRequest), principal, ServiceRequest.provider_id, ServiceRequest.caregiver_id)
    stmt = stmt.where(
        or_(
            col(ServiceRequest.status).in_(OPEN),
            col(ServiceRequest.status).in_(CLOSED) & (in_day | closed_in_day),
        )
    )
    return session.exec(
        stmt.order_by(col(ServiceRequest.window_start), col(ServiceRequest.id)).limit(MAX_JOBS)
    ).all()


def _job(
    request: ServiceRequest,
    elder: Elder,
    provider: Provider,
    caregiver: Caregiver | None,
    visit: Visit | None,
    departure: Departure | None,
) -> FieldJob:
    assert request.id is not None
    is_open = request.status in OPEN
    where = evv.place_kind(request.kind, request.details)
    at_home = where == VisitPlace.ELDER_HOME
    return FieldJob(
        request_id=request.id,
        kind=request.kind,  # type: ignore[arg-type]
        status=request.status,  # type: ignore[arg-type]
        priority=request.priority,
        window_start=request.window_start,
        window_end=request.window_end,
        place=where,
        elder=JobElder(
            name=elder.name if is_open else mask_name(elder.name),
            township=elder.township,
            address=(elder.address if at_home else provider.address) if is_open else None,
            phone=mask_phone(elder.phone),
            lat=elder.lat if is_open and at_home else None,
            lon=elder.lon if is_open and at_home else None,
        ),
        care=JobCare(
            care_level=elder.care_level,
            note=request.note if is_open else "",
            slot=request.details.get("slot"),
            delivery=request.details.get("delivery"),
            skills=list(request.details.get("skills") or []),
        ),
        caregiver_id=request.caregiver_id,
        caregiver_name=caregiver.name if caregiver else None,
        departed_at=departure.at if departure else None,
        eta_minutes=departure.eta_minutes if departure else None,
        visit=JobVisit(
            check_in_at=visit.check_in_at,
            check_out_at=visit.check_out_at,
            flags=list(visit.flags),
            outcome=visit.outcome,  # type: ignore[arg-type]
            review=visit.review,  # type: ignore[arg-type]
        )
        if visit
        else None,
        phone_revealable=is_open and bool(elder.phone),
    )


def _meals(jobs: Sequence[FieldJob], day: date) -> list[MealSlot]:
    slots: dict[str, MealSlot] = {}
    for job in jobs:
        if job.kind != "meal" or local(job.window_start).date() != day:
            continue
        slot = slots.setdefault(
            job.care.slot or "lunch",
            MealSlot(slot=job.care.slot or "lunch", dine_in=0, delivery=0, done=0, cancelled=0),
        )
        if job.status == RequestStatus.CANCELLED:
            slot.cancelled += 1
            continue
        if job.care.delivery:
            slot.delivery += 1
        else:
            slot.dine_in += 1
        slot.done += job.status == RequestStatus.COMPLETED
    return [slots[s] for s in ("lunch", "dinner") if s in slots]


def _attendance(jobs: Sequence[FieldJob], day: date) -> Attendance:
    counts = Attendance(expected=0, arrived=0, left=0, absent=0)
    for job in jobs:
        if job.kind != "day_care" or local(job.window_start).date() != day:
            continue
        if job.status == RequestStatus.ASSIGNED:
            counts.expected += 1
        elif job.status == RequestStatus.IN_SERVICE:
            counts.arrived += 1
        elif job.status == RequestStatus.COMPLETED:
            counts.left += 1
        elif job.visit is not None and job.visit.outcome != VisitOutcome.COMPLETED:
            counts.absent += 1
    return counts


def today(*, session: Session, principal: Principal, day: date | None = None) -> tuple[FieldDay, set[int]]:
    """The page's whole day in one read, and whose elders it names (for the audit log).
    `since` is read first: whatever commits while the rest is read comes again over the
    websocket, so the page misses nothing."""
    since = last_seq(session)
    day = day or local(utcnow()).date()
    provider = session.get(Provider, principal.provider_id)
    assert provider is not None and provider.id is not None
    requests = _day_jobs(session, principal, day)
    ids = [r.id for r in requests if r.id is not None]
    elders = loaders.by_id(session, Elder, {r.elder_id for r in requests})
    caregivers = loaders.by_id(
        session, Caregiver, {r.caregiver_id for r in requests} | {principal.caregiver_id}
    )
    visits = loaders.by_request(session, Visit, ids)
    departures = loaders.by_request(session, Departure, ids)
    jobs = [
        _job(
            r,
            elders[r.elder_id],
            provider,
            caregivers.get(r.caregiver_id or 0),
            visits.get(r.id or 0),
            departures.get(r.id or 0),
        )
        for r in requests
    ]
    own = caregivers.get(principal.caregiver_id or 0)
    read = FieldDay(
        since=since,
        day=day,
        provider=FieldProvider(
            id=provider.id, name=provider.name, kind=provider.kind, lat=provider.lat, lon=provider.lon
        ),
        caregiver=FieldCaregiver(id=own.id or 0, name=own.name) if own else None,
        jobs=jobs,
        meals=_meals(jobs, day),
        attendance=_attendance(jobs, day),
    )
    return read, {r.elder_id for r in requests}


# ---- the elder's phone --------------------------------------------------------------------


def reveal_phone(*, session: Session, principal: Principal, request_id: int, client: str = "") -> PhoneRead:
    """The elder's full number, for the caregiver of an open job only, and audited."""
    request = assigned_request(session, principal, request_id)
    if request.status not in OPEN:
        raise Conflict(f"request {request_id} is {request.status}; the number is shown for open jobs only")
    elder = session.get(Elder, request.elder_id)
    assert elder is not None
    audit.record(
        principal=principal,
        action="read",
        elder_ids=[request.elder_id],
        what=f"phone for job {request_id}",
        client=client,
        session=session,
    )
    return PhoneRead(request_id=request_id, phone=elder.phone)
