"""The visit rhythm of elders under the guarantee: who was seen when, and who is past due.

Under the guarantee: elders living alone or receiving 特困 support, alive. Their rhythm is their
visit plan's `every_days` (the shortest, if several are active), else WELFARE_RHYTHM_DAYS. The
last visit is the last visit record of any kind that ended `completed` (someone saw the elder:
a caregiver at home, the canteen, the day-care center). Counted in local days: visited on a
Monday with a 7-day rhythm is on time through the next Monday and overdue from Tuesday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from dispatch.core.clock import as_utc, local
from dispatch.core.config import get_settings
from dispatch.elders.models import Assistance, Elder
from dispatch.plans.models import PlanKind, PlanStatus, ServicePlan
from dispatch.visits.models import Visit, VisitOutcome

# Visits further back than this are not looked up; an elder not seen since counts as not seen
# since this day (the figure shown is then a lower bound).
LOOK_BACK = timedelta(days=180)


@dataclass(frozen=True)
class RhythmRow:
    elder_id: int
    name: str
    township: str
    lives_alone: bool
    assistance: str
    rhythm_days: int
    last_visit_at: datetime | None
    since: date  # the day counted from: the last visit, or registration / the look-back limit
    days_since: int

    @property
    def overdue(self) -> bool:
        return self.days_since > self.rhythm_days

    @property
    def overdue_days(self) -> int:
        return max(0, self.days_since - self.rhythm_days)

    @property
    def due_on(self) -> date:
        """The first day this elder counts as overdue."""
        return self.since + timedelta(days=self.rhythm_days + 1)


def guaranteed_elders(
    session: Session, *, as_of: datetime, township: str | None = None, lives_alone_only: bool = False
) -> list[Elder]:
    covered: ColumnElement[bool] = col(Elder.lives_alone).is_(True)
    if not lives_alone_only:
        covered = or_(covered, col(Elder.assistance) == Assistance.TEKUN)
    stmt = select(Elder).where(
        covered,
        col(Elder.created_at) <= as_of,
        or_(col(Elder.deceased_on).is_(None), col(Elder.deceased_on) > local(as_of).date()),
    )
    if township is not None:
        stmt = stmt.where(Elder.township == township)
    return list(session.exec(stmt.order_by(col(Elder.id))).all())


def rhythms(session: Session, elder_ids: list[int]) -> dict[int, int]:
    """Each elder's own rhythm from their active visit plans (elders without one are absent)."""
    if not elder_ids:
        return {}
    rows = session.exec(
        select(ServicePlan.elder_id, func.min(ServicePlan.every_days))
        .where(
            ServicePlan.kind == PlanKind.VISIT,
            ServicePlan.status == PlanStatus.ACTIVE,
            col(ServicePlan.elder_id).in_(elder_ids),
        )
        .group_by(col(ServicePlan.elder_id))
    ).all()
    return {elder_id: days for elder_id, days in rows if days}


def last_visits(
    session: Session, *, as_of: datetime, elder_ids: list[int] | None = None
) -> dict[int, datetime]:
    stmt = select(Visit.elder_id, func.max(Visit.check_out_at)).where(
        col(Visit.outcome) == VisitOutcome.COMPLETED,
        col(Visit.check_out_at).is_not(None),
        col(Visit.check_out_at) <= as_of,
        col(Visit.check_in_at) >= as_of - LOOK_BACK,
    )
    if elder_ids is not None:
        stmt = stmt.where(col(Visit.elder_id).in_(elder_ids))
    rows = session.exec(stmt.group_by(col(Visit.elder_id))).all()
    # max() over a column bypasses the column's type on SQLite: parse what comes back.
    return {elder_id: _as_datetime(at) for elder_id, at in rows if at is not None}


def _as_datetime(value: datetime | str) -> datetime:
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def rhythm_status(
    session: Session, *, as_of: datetime, township: str | None = None, lives_alone_only: bool = False
) -> list[RhythmRow]:
    elders = guaranteed_elders(session, as_of=as_of, township=township, lives_alone_only=lives_alone_only)
    ids = [e.id for e in elders if e.id is not None]
    own = rhythms(session, ids)
    seen = last_visits(session, as_of=as_of, elder_ids=ids if len(ids) <= 900 else None)
    default = get_settings().welfare_rhythm_days
    today = local(as_of).date()
    floor = local(as_of - LOOK_BACK).date()
    rows = []
    for elder in elders:
        assert elder.id is not None
        last = seen.get(elder.id)
        since = local(last).date() if last else max(local(elder.created_at).date(), floor)
        rows.append(
            RhythmRow(
                elder_id=elder.id,
                name=elder.name,
                township=elder.township,
                lives_alone=elder.lives_alone,
                assistance=elder.assistance,
                rhythm_days=own.get(elder.id, default),
                last_visit_at=last,
                since=since,
                days_since=(today - since).days,
            )
        )
    return rows
