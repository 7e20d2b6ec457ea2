"""What a relative sees of their elders' requests: a plain timeline (requested, offered,
accepted by whom, on the way, arrived, finished), and a visit's summary only where the elder
consented (`status_and_notes`). The consent is applied here, on the server; the websocket
frames a family receives carry ids and statuses only, never a summary or a note, so there is
nothing there to withhold."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, mask_name
from dispatch.core.errors import NotFound
from dispatch.core.events import Event, last_seq
from dispatch.elders import service as elder_service
from dispatch.elders.models import Consent, Elder, FamilyLink
from dispatch.orders.lifecycle import RequestStatus
from dispatch.orders.models import ServiceRequest
from dispatch.visits import loaders
from dispatch.visits.models import Departure, Feedback, Visit, VisitOutcome
from dispatch.visits.schemas import FamilyElder, FamilyOverview, FamilyRequestRead, FamilyStep
from dispatch.visits.service import VISIT_FAILED
from services.models import Caregiver, Provider

PER_ELDER = 20


def _links(session: Session, principal: Principal) -> dict[int, FamilyLink]:
    return {link.elder_id: link for link in elder_service.family_links(session=session, user_id=principal.id)}


def overview(*, session: Session, principal: Principal) -> FamilyOverview:
    """The family page's start: its elders, their latest requests, and where the live stream
    resumes. `since` is read first, so whatever commits while the rest is read is replayed."""
    since = last_seq(session)
    links = _links(session, principal)
    elders = session.exec(select(Elder).where(col(Elder.id).in_(list(links))).order_by(col(Elder.id))).all()
    requests: list[ServiceRequest] = []
    for elder in elders:
        requests += session.exec(
            select(ServiceRequest)
            .where(ServiceRequest.elder_id == elder.id)
            .order_by(col(ServiceRequest.created_at).desc(), col(ServiceRequest.id).desc())
            .limit(PER_ELDER)
        ).all()
    return FamilyOverview(
        since=since,
        elders=[
            FamilyElder(
                id=e.id or 0,
                name=e.name,
                township=e.township,
                relation=links[e.id or 0].relation,
                consent=Consent(links[e.id or 0].consent),
            )
            for e in elders
        ],
        requests=family_reads(session, links, requests),
    )


def list_requests(
    *, session: Session, principal: Principal, elder_id: int | None, limit: int, offset: int
) -> list[FamilyRequestRead]:
    links = _links(session, principal)
    if elder_id is not None and elder_id not in links:
        raise NotFound(f"elder {elder_id} not found")
    wanted = [elder_id] if elder_id is not None else list(links)
    rows = session.exec(
        select(ServiceRequest)
        .where(col(ServiceRequest.elder_id).in_(wanted))
        .order_by(col(ServiceRequest.created_at).desc(), col(ServiceRequest.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return family_reads(session, links, rows)


def get_request(*, session: Session, principal: Principal, request_id: int) -> FamilyRequestRead:
    links = _links(session, principal)
    request = session.get(ServiceRequest, request_id)
    if request is None or request.elder_id not in links:
        raise NotFound(f"request {request_id} not found")
    return family_reads(session, links, [request])[0]


def family_reads(
    session: Session, links: dict[int, FamilyLink], requests: Sequence[ServiceRequest]
) -> list[FamilyRequestRead]:
    ids = [r.id for r in requests if r.id is not None]
    events: dict[int, list[Event]] = defaultdict(list)
    if ids:
        for ev in session.exec(select(Event).where(col(Event.request_id).in_(ids)).order_by(col(Event.seq))):
            events[ev.request_id or 0].append(ev)
    visits = loaders.by_request(session, Visit, ids)
    departures = loaders.by_request(session, Departure, ids)
    feedback = loaders.by_request(session, Feedback, ids)
    providers = loaders.by_id(session, Provider, {r.provider_id for r in requests})
    caregivers = loaders.by_id(session, Caregiver, {r.caregiver_id for r in requests})
    out = []
    for r in requests:
        assert r.id is not None
        visit, departure, rated = visits.get(r.id), departures.get(r.id), feedback.get(r.id)
        provider = providers[r.provider_id].name if r.provider_id in providers else None
        caregiver = caregivers[r.caregiver_id].name if r.caregiver_id in caregivers else None
        consented = links[r.elder_id].consent == Consent.STATUS_AND_NOTES
        has_summary = bool(visit and visit.summary)
        out.append(
            FamilyRequestRead(
                id=r.id,
                elder_id=r.elder_id,
                kind=r.kind,  # type: ignore[arg-type]
                status=r.status,  # type: ignore[arg-type]
                priority=r.priority,
                window_start=r.window_start,
                window_end=r.window_end,
                created_at=r.created_at,
                slot=r.details.get("slot"),
                delivery=r.details.get("delivery"),
                welfare=bool(r.details.get("welfare")),
                provider_name=provider,
                caregiver_name=mask_name(caregiver) if caregiver else None,
                steps=_steps(events[r.id], departure, provider),
                outcome=VisitOutcome(visit.outcome) if visit else None,
                summary=visit.summary if visit and has_summary and consented else None,
                summary_withheld=has_summary and not consented,
                rating=rated.rating if rated else None,
                can_rate=r.status == RequestStatus.COMPLETED and rated is None,
                last_seq=max((e.seq or 0 for e in events[r.id]), default=0),
            )
        )
    return out


def _steps(events: list[Event], departure: Departure | None, provider: str | None) -> list[FamilyStep]:
    """The events a relative cares about, in order; declines and expiries stay internal."""
    steps: list[FamilyStep] = []
    offered = False
    for ev in events:
        if ev.type == "request.created":
            steps.append(FamilyStep(step="requested", at=ev.at))
        elif ev.type == "request.offered" and not offered:
            offered = True
            steps.append(FamilyStep(step="offered", at=ev.at))
        elif ev.type == "request.assigned":
            steps.append(FamilyStep(step="accepted", at=ev.at, detail=provider))
        elif ev.type == "request.in_service":
            steps.append(FamilyStep(step="arrived", at=ev.at))
        elif ev.type == "request.completed":
            steps.append(FamilyStep(step="finished", at=ev.at))
        elif ev.type == "request.escalated":
            steps.append(FamilyStep(step="escalated", at=ev.at))
        elif ev.type == "request.cancelled":
            failed = ev.data.get("reason") == VISIT_FAILED
            detail = str(ev.data.get("outcome")) if failed else None
            steps.append(FamilyStep(step="not_served" if failed else "cancelled", at=ev.at, detail=detail))
    if departure is not None:
        eta = str(departure.eta_minutes) if departure.eta_minutes else None
        steps.append(FamilyStep(step="on_the_way", at=departure.at, detail=eta))
    return sorted(steps, key=lambda s: s.at)
