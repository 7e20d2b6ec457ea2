"""`GET /api/requests/{id}/candidates`: the providers an operator may dispatch a request to by
hand, best first, scored by the matcher itself (dispatch.matching's public functions, the
settings' weights, the providers' records, the elder's history), so the console's list and the
machine's choice never disagree; each candidate carries the score's parts.

Unlike the matcher, providers that declined or let this request's offer expire stay on the
list, flagged: after "all declined" they are exactly whom the operator phones to ask again.
Providers the elder refused are left off, as they are for the matcher.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlmodel import Session, col, select

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.config import get_settings
from dispatch.core.db import SessionDep
from dispatch.core.redis import get_redis
from dispatch.core.validation import IdPath
from dispatch.elders import service as elder_service
from dispatch.matching import capacity, forecast, records
from dispatch.matching import service as matching_service
from dispatch.matching.core import Usage, candidates
from dispatch.orders import service as request_service
from dispatch.orders.models import Offer, OfferStatus
from services.models import Provider

router = APIRouter(tags=["requests"])
Dispatcher = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN)]


class CandidateRead(BaseModel):
    provider_id: int
    name: str
    kind: str
    township: str
    phone: str
    caregiver_id: int | None
    distance_km: float
    score: float
    score_parts: dict[str, float]
    capacity_left: int
    declined_before: bool


class CandidatesRead(BaseModel):
    request_id: int
    status: str
    # Why nobody is feasible (the matcher's reason: no_provider_in_range, all_full, ...), or null.
    reason: str | None
    candidates: list[CandidateRead]


def _answered_before(session: Session, request_id: int) -> set[int]:
    rows = session.exec(
        select(Offer.provider_id).where(
            Offer.request_id == request_id,
            col(Offer.status).in_([OfferStatus.DECLINED, OfferStatus.EXPIRED]),
        )
    ).all()
    return set(rows)


def list_candidates(*, session: Session, principal: Principal, request_id: int) -> CandidatesRead:
    request = request_service.get_request(session=session, principal=principal, request_id=request_id)
    elder = elder_service.get_elder(session=session, principal=principal, elder_id=request.elder_id)
    declined = _answered_before(session, request_id)
    # Hard constraints and scores exactly as the matcher sees them, minus its memory of declines.
    (info,) = matching_service.request_infos(session, [(request, elder.lat, elder.lon)])
    info = replace(info, excluded=frozenset())
    settings = get_settings()
    recs = records.load_records(session, max_age_seconds=settings.match_record_cache_seconds)
    providers = capacity.load_providers(session, records=recs)
    usage = Usage({p.id: p for p in providers}, capacity.load_holdings(session))
    # The same capacity prices as the matcher's (see dispatch/matching/forecast.py).
    prices = forecast.read_prices(get_redis(), max_age_seconds=3 * settings.match_price_refresh_seconds)
    found, reason = candidates(
        info, providers, usage, matching_service.weights(), prices if settings.match_forecast_days else None
    )
    rows = {
        p.id: p
        for p in session.exec(
            select(Provider).where(col(Provider.id).in_([c.provider.id for c in found]))
        ).all()
    }
    return CandidatesRead(
        request_id=request_id,
        status=request.status,
        reason=reason,
        candidates=[
            CandidateRead(
                provider_id=c.provider.id,
                name=rows[c.provider.id].name,
                kind=c.provider.kind,
                township=rows[c.provider.id].township,
                phone=rows[c.provider.id].phone,
                caregiver_id=c.caregiver_id,
                distance_km=round(c.distance_km, 3),
                score=round(c.score, 3),
                score_parts={k: float(v) for k, v in c.parts.items()},
                capacity_left=usage.left(c.provider, info),
                declined_before=c.provider.id in declined,
            )
            for c in found
        ],
    )


@router.get("/api/requests/{request_id}/candidates", response_model=CandidatesRead)
def get_candidates(
    request_id: IdPath, http: Request, session: SessionDep, principal: Dispatcher
) -> CandidatesRead:
    """Feasible providers for a manual dispatch, best (lowest score) first, with distance and
    the score's parts."""
    found = list_candidates(session=session, principal=principal, request_id=request_id)
    # Distances are measured from the elder's home: a read of the elder's record.
    elder_ids = request_service.elder_ids_of(session, [request_id])
    audit.record_read(http, principal, elder_ids, f"candidates for request {request_id}")
    return found
