"""Who is overdue: elders under the guarantee past their visit rhythm, and every elder with a
welfare check still open (a failed visit, a booking nobody took, a missed rhythm), by township."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlmodel import Session, col, select

from dispatch.elders.models import Elder
from dispatch.orders.lifecycle import OPEN_STATUSES
from dispatch.orders.models import ServiceRequest
from dispatch.welfare import rhythm
from dispatch.welfare.models import WelfareCheck
from dispatch.welfare.schemas import OpenCheck, OverdueElder, OverdueList


def open_checks(session: Session, *, township: str | None = None) -> dict[int, list[OpenCheck]]:
    stmt = (
        select(WelfareCheck, ServiceRequest)
        .join(ServiceRequest, col(ServiceRequest.id) == col(WelfareCheck.request_id))
        .where(col(ServiceRequest.status).in_([s.value for s in OPEN_STATUSES]))
        .order_by(col(WelfareCheck.created_at))
    )
    if township is not None:
        stmt = stmt.where(ServiceRequest.township == township)
    found: dict[int, list[OpenCheck]] = {}
    for check, request in session.exec(stmt).all():
        found.setdefault(check.elder_id, []).append(
            OpenCheck(
                request_id=check.request_id,
                reason=check.reason,
                status=request.status,
                created_at=check.created_at,
                source_request_id=check.source_request_id,
            )
        )
    return found


def overdue_list(session: Session, *, now: datetime, township: str | None = None) -> OverdueList:
    rows = {r.elder_id: r for r in rhythm.rhythm_status(session, as_of=now, township=township)}
    checks = open_checks(session, township=township)
    ids = {eid for eid, r in rows.items() if r.overdue} | set(checks)
    missing = [eid for eid in ids if eid not in rows]
    others = (
        {e.id: e for e in session.exec(select(Elder).where(col(Elder.id).in_(missing))).all()}
        if missing
        else {}
    )
    entries: list[OverdueElder] = []
    for elder_id in ids:
        row = rows.get(elder_id)
        elder = others.get(elder_id)
        reasons = (["rhythm_overdue"] if row and row.overdue else []) + [
            c.reason for c in checks.get(elder_id, []) if c.reason != "rhythm_overdue"
        ]
        entries.append(
            OverdueElder(
                elder_id=elder_id,
                name=row.name if row else (elder.name if elder else ""),
                township=row.township if row else (elder.township if elder else ""),
                lives_alone=row.lives_alone if row else bool(elder and elder.lives_alone),
                assistance=row.assistance if row else (elder.assistance if elder else "none"),
                rhythm_days=row.rhythm_days if row else None,
                last_visit_at=row.last_visit_at if row else None,
                days_since_visit=row.days_since if row else None,
                overdue_days=row.overdue_days if row and row.overdue else 0,
                reasons=reasons or ["welfare_check"],
                checks=checks.get(elder_id, []),
            )
        )
    entries.sort(key=lambda e: (-e.overdue_days, -len(e.checks), e.township, e.elder_id))
    return OverdueList(
        as_of=now,
        total=len(entries),
        by_township=dict(Counter(e.township for e in entries).most_common()),
        elders=entries,
    )
