"""Visit records as the operators, managers and providers read them: lists by day, provider and
flag, one visit with its corrections, and a CSV export. Scope: staff see every visit, a provider
account its own provider's (a caregiver-bound account its caregiver's), nobody else any."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role, User, mask_name
from dispatch.core.clock import LOCAL_TZ, local
from dispatch.core.errors import NotFound
from dispatch.elders.models import Elder
from dispatch.orders import service as request_service
from dispatch.orders.models import ServiceRequest
from dispatch.visits import loaders
from dispatch.visits.models import CorrectionDecision, Visit, VisitCorrection, VisitReview
from dispatch.visits.schemas import CorrectionRead, VisitRead
from services.models import Caregiver, Provider


@dataclass(frozen=True)
class VisitFilter:
    day_from: date | None = None
    day_to: date | None = None
    provider_id: int | None = None
    flagged: bool | None = None
    review: VisitReview | None = None
    kind: str | None = None


def day_start(day: date) -> datetime:
    """Midnight of a local (Asia/Shanghai) day, as an aware datetime."""
    return datetime.combine(day, time(0), LOCAL_TZ)


def _scoped(stmt, principal: Principal):  # type: ignore[no-untyped-def]
    if principal.is_staff:
        return stmt
    if principal.role != Role.PROVIDER:
        return stmt.where(col(Visit.id).is_(None))  # nothing
    stmt = stmt.where(Visit.provider_id == principal.provider_id)
    if principal.caregiver_id is not None:
        stmt = stmt.where(Visit.caregiver_id == principal.caregiver_id)
    return stmt


def list_visits(
    *, session: Session, principal: Principal, where: VisitFilter, limit: int = 100, offset: int = 0
) -> Sequence[Visit]:
    """Newest check-in first. `from`/`to` are local days, both included. A provider naming
    another provider gets 404, as for any id outside its scope."""
    if principal.role == Role.PROVIDER and where.provider_id not in (None, principal.provider_id):
        raise NotFound(f"provider {where.provider_id} not found")
    stmt = select(Visit)
    if where.day_from is not None:
        stmt = stmt.where(col(Visit.check_in_at) >= day_start(where.day_from))
    if where.day_to is not None:
        stmt = stmt.where(col(Visit.check_in_at) < day_start(where.day_to + timedelta(days=1)))
    if where.provider_id is not None:
        stmt = stmt.where(Visit.provider_id == where.provider_id)
    if where.flagged is not None:
        stmt = stmt.where(col(Visit.flagged).is_(where.flagged))
    if where.review is not None:
        stmt = stmt.where(Visit.review == where.review)
    if where.kind is not None:
        stmt = stmt.where(Visit.kind == where.kind)
    stmt = _scoped(stmt, principal)
    return session.exec(
        stmt.order_by(col(Visit.check_in_at).desc(), col(Visit.id).desc()).offset(offset).limit(limit)
    ).all()


def get_visit(*, session: Session, principal: Principal, visit_id: int, for_update: bool = False) -> Visit:
    stmt = _scoped(select(Visit).where(Visit.id == visit_id), principal)
    if for_update:
        stmt = stmt.with_for_update()
    visit = session.exec(stmt).first()
    if visit is None:
        raise NotFound(f"visit {visit_id} not found")
    return visit


def visit_of_request(*, session: Session, principal: Principal, request_id: int) -> Visit | None:
    """The visit of a request in the caller's scope (404 otherwise), or None before check-in."""
    request_service.get_request(session=session, principal=principal, request_id=request_id)
    return session.exec(_scoped(select(Visit).where(Visit.request_id == request_id), principal)).first()


def corrections_of(session: Session, visit_ids: Iterable[int]) -> dict[int, list[VisitCorrection]]:
    ids = list(set(visit_ids))
    out: dict[int, list[VisitCorrection]] = {i: [] for i in ids}
    if ids:
        stmt = select(VisitCorrection).where(col(VisitCorrection.visit_id).in_(ids))
        for row in session.exec(stmt.order_by(col(VisitCorrection.id))):
            out[row.visit_id].append(row)
    return out


def effective_times(visit: Visit, corrections: Sequence[VisitCorrection]) -> tuple[datetime, datetime | None]:
    """The recorded start and end, unless the latest correction approved other times."""
    start, end = visit.check_in_at, visit.check_out_at
    latest = corrections[-1] if corrections else None
    if latest is not None and latest.decision == CorrectionDecision.APPROVE:
        start = latest.corrected_check_in_at or start
        end = latest.corrected_check_out_at or end
    return start, end


def _names(
    session: Session, model: type[Elder] | type[Provider] | type[Caregiver], ids: set[int | None]
) -> dict[int, str]:
    return {i: row.name for i, row in loaders.by_id(session, model, ids).items()}  # type: ignore[arg-type]


def visit_reads(session: Session, principal: Principal, visits: Sequence[Visit]) -> list[VisitRead]:
    """API shapes, with names, corrections and derived figures, read in a few queries."""
    corrections = corrections_of(session, [v.id for v in visits if v.id is not None])
    elders = _names(session, Elder, {v.elder_id for v in visits})
    providers = _names(session, Provider, {v.provider_id for v in visits})
    caregivers = _names(session, Caregiver, {v.caregiver_id for v in visits})
    users = {
        i: u.username
        for i, u in loaders.by_id(
            session, User, {c.user_id for cs in corrections.values() for c in cs}
        ).items()
    }
    requests = {v.request_id for v in visits}
    townships = dict(
        session.exec(
            select(ServiceRequest.id, ServiceRequest.township).where(col(ServiceRequest.id).in_(requests))
        ).all()
    )
    out = []
    for v in visits:
        assert v.id is not None
        own = corrections[v.id]
        start, end = effective_times(v, own)
        name = elders.get(v.elder_id)
        read = VisitRead.model_validate(v, from_attributes=True)
        read.check_in_skew_seconds = _seconds(v.check_in_device_at, v.check_in_at)
        read.check_out_skew_seconds = _seconds(v.check_out_device_at, v.check_out_at)
        read.duration_minutes = round((end - start).total_seconds() / 60, 1) if end else None
        read.effective_check_in_at, read.effective_check_out_at = start, end
        read.township = townships.get(v.request_id)
        read.elder_name = name if principal.is_staff or name is None else mask_name(name)
        read.provider_name = providers.get(v.provider_id)
        read.caregiver_name = caregivers.get(v.caregiver_id) if v.caregiver_id else None
        read.corrections = [correction_read(c, users.get(c.user_id, "")) for c in own]
        out.append(read)
    return out


def _seconds(device_at: datetime | None, server_at: datetime | None) -> float | None:
    if device_at is None or server_at is None:
        return None
    return round((device_at - server_at).total_seconds(), 1)


def correction_read(row: VisitCorrection, by: str) -> CorrectionRead:
    assert row.id is not None
    return CorrectionRead(
        id=row.id,
        visit_id=row.visit_id,
        decision=CorrectionDecision(row.decision),
        reason=row.reason,
        corrected_check_in_at=row.corrected_check_in_at,
        corrected_check_out_at=row.corrected_check_out_at,
        flags_reviewed=list(row.flags_reviewed),
        verified_before=row.verified_before,
        verified_after=row.verified_after,
        by=by,
        created_at=row.created_at,
    )


# ---- CSV --------------------------------------------------------------------------------

CSV_COLUMNS = (
    "visit_id", "request_id", "kind", "township", "elder_id", "provider_id", "provider", "caregiver_id",
    "place", "check_in_at", "check_in_device_at", "check_in_distance_m", "check_out_at",
    "check_out_device_at", "check_out_distance_m", "duration_minutes", "outcome", "flags", "review",
    "verified", "effective_check_in_at", "effective_check_out_at", "corrections", "last_correction_reason",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """Local times; text that a spreadsheet would run as a formula is quoted (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return local(value).isoformat(timespec="seconds")
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(reads: Sequence[VisitRead]) -> str:
    """One row per visit, no names of elders, phones or summaries (those stay in the platform)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for r in reads:
        last = r.corrections[-1] if r.corrections else None
        row = (
            r.id, r.request_id, r.kind, r.township, r.elder_id, r.provider_id, r.provider_name,
            r.caregiver_id, r.place.value, r.check_in_at, r.check_in_device_at, r.check_in_distance_m,
            r.check_out_at, r.check_out_device_at, r.check_out_distance_m, r.duration_minutes, r.outcome,
            ";".join(r.flags), r.review.value, r.verified, r.effective_check_in_at, r.effective_check_out_at,
            len(r.corrections), last.reason if last else None,
        )  # fmt: skip
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()
