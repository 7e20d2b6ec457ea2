"""`GET /api/visits` (flagged visits for the operators, a provider's own record), one visit, its
corrections, and the CSV export."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath, IdQuery, Offset
from dispatch.orders.models import RequestKind
from dispatch.visits import records
from dispatch.visits.corrections import correct_visit
from dispatch.visits.models import VisitReview
from dispatch.visits.schemas import CorrectionIn, CorrectionRead, LocalDay, VisitRead

router = APIRouter(prefix="/api/visits", tags=["visits"])

VisitReader = Annotated[Principal, require_roles(Role.PROVIDER, Role.OPERATOR, Role.MANAGER, Role.ADMIN)]
Corrector = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN)]

FromDay = Annotated[
    LocalDay | None, Query(alias="from", description="First local day (Asia/Shanghai), included.")
]
ToDay = Annotated[LocalDay | None, Query(alias="to", description="Last local day, included.")]
Flagged = Annotated[bool | None, Query(description="true: visits with a flag; false: without.")]
Review = Annotated[VisitReview | None, Query(description="open: flagged and not yet corrected.")]


def _filter(
    day_from: date | None,
    day_to: date | None,
    provider_id: int | None,
    flagged: bool | None,
    review: VisitReview | None,
    kind: RequestKind | None,
) -> records.VisitFilter:
    return records.VisitFilter(day_from, day_to, provider_id, flagged, review, kind.value if kind else None)


@router.get("", response_model=list[VisitRead])
def list_visits(
    request: Request,
    session: SessionDep,
    principal: VisitReader,
    day_from: FromDay = None,
    day_to: ToDay = None,
    provider_id: IdQuery = None,
    flagged: Flagged = None,
    review: Review = None,
    kind: RequestKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[VisitRead]:
    """Visits, newest first. Staff see all; a provider account only its own provider's."""
    where = _filter(day_from, day_to, provider_id, flagged, review, kind)
    rows = records.list_visits(session=session, principal=principal, where=where, limit=limit, offset=offset)
    reads = records.visit_reads(session, principal, rows)
    audit.record_read(request, principal, (v.elder_id for v in rows), "visits")
    return reads


@router.get(
    "/export.csv",
    response_class=Response,
    responses={
        200: {"description": "One row per visit", "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
def export_visits(
    request: Request,
    session: SessionDep,
    principal: VisitReader,
    day_from: FromDay = None,
    day_to: ToDay = None,
    provider_id: IdQuery = None,
    flagged: Flagged = None,
    review: Review = None,
    kind: RequestKind | None = None,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 10_000,
) -> Response:
    """The same visits as CSV (local times; no elder names, phones or summaries), in scope."""
    where = _filter(day_from, day_to, provider_id, flagged, review, kind)
    rows = records.list_visits(session=session, principal=principal, where=where, limit=limit)
    body = records.to_csv(records.visit_reads(session, principal, rows))
    audit.record_read(request, principal, (v.elder_id for v in rows), "visits.csv")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="visits.csv"'},
    )


@router.get("/{visit_id}", response_model=VisitRead)
def get_visit(visit_id: IdPath, request: Request, session: SessionDep, principal: VisitReader) -> VisitRead:
    visit = records.get_visit(session=session, principal=principal, visit_id=visit_id)
    audit.record_read(request, principal, [visit.elder_id], f"visit {visit_id}")
    return records.visit_reads(session, principal, [visit])[0]


@router.post("/{visit_id}/corrections", response_model=CorrectionRead, status_code=201)
def add_correction(
    visit_id: IdPath, body: CorrectionIn, request: Request, session: SessionDep, principal: Corrector
) -> CorrectionRead:
    """An operator approves (optionally with corrected times) or rejects a visit, with a reason.
    Kept as its own record and audited; the visit's recorded facts stay as they were."""
    row = correct_visit(
        session=session, principal=principal, visit_id=visit_id, body=body, client=audit.client_of(request)
    )
    return records.correction_read(row, principal.username)
