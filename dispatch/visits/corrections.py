"""An operator's correction of a visit: a decision with a reason, kept as a row of its own
(append-only in the database) and audited. The visit's recorded facts are never touched; only
where it stands (`review`, `verified`) follows the latest correction."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from dispatch.core import audit
from dispatch.core.auth import Principal, Role
from dispatch.core.clock import utcnow
from dispatch.core.errors import Conflict, NotFound, Unprocessable
from dispatch.visits import evv, records
from dispatch.visits.models import CorrectionDecision, VisitCorrection
from dispatch.visits.schemas import CorrectionIn

# A phone's clock may run a little ahead; a "corrected" time further in the future is a typo.
_FUTURE_TOLERANCE = timedelta(minutes=5)


def correct_visit(
    *, session: Session, principal: Principal, visit_id: int, body: CorrectionIn, client: str = ""
) -> VisitCorrection:
    if principal.role not in (Role.OPERATOR, Role.ADMIN):
        raise NotFound(f"visit {visit_id} not found")
    # Row lock on PostgreSQL: two operators correcting at once are applied one after the other,
    # so the visit's standing is always that of the newest correction.
    visit = records.get_visit(session=session, principal=principal, visit_id=visit_id, for_update=True)
    if visit.check_out_at is None:
        raise Conflict(f"visit {visit_id} is still in service; correct it once it has ended")
    latest = utcnow() + _FUTURE_TOLERANCE
    for value in (body.corrected_check_in_at, body.corrected_check_out_at):
        if value is not None and value > latest:
            raise Unprocessable("a corrected time may not lie in the future")
    start = body.corrected_check_in_at or visit.check_in_at
    end = body.corrected_check_out_at or visit.check_out_at
    if end < start:
        raise Unprocessable("the corrected check-out would come before the check-in")
    review = evv.review_of(visit.flags, body.decision)
    verified = evv.is_verified(visit.outcome, review, closed=True)
    assert visit.id is not None
    row = VisitCorrection(
        visit_id=visit.id,
        decision=body.decision,
        reason=body.reason.strip(),
        corrected_check_in_at=body.corrected_check_in_at,
        corrected_check_out_at=body.corrected_check_out_at,
        flags_reviewed=list(visit.flags),
        verified_before=visit.verified,
        verified_after=verified,
        user_id=principal.id,
    )
    session.add(row)
    visit.review = review
    visit.verified = verified
    session.add(visit)
    session.flush()
    verb = "approved" if body.decision == CorrectionDecision.APPROVE else "rejected"
    audit.record(
        principal=principal,
        action="visit_correction",
        elder_ids=[visit.elder_id],
        what=f"visit {visit.id} {verb}: {row.reason}",
        client=client,
        session=session,
    )
    return row
