"""The subsidy ledger of a month, derived from the visit records (so a visit an operator approves
later draws in its own month as soon as it is verified).

Each elder is entitled each month to SUBSIDY_MONTHLY_<category> yuan (dibao, low income, 特困;
none: nothing). Each visit that ended `completed` and is `verified` draws its kind's PRICE_<kind>
from that month's entitlement, in the order the visits ended, until the entitlement is used up
(the rest is the elder's own payment). An unverified or failed visit draws nothing; neither does
any visit on or after the day the elder is recorded as deceased, nor any month after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import or_, select
from sqlmodel import Session

from dispatch.core.clock import LOCAL_TZ, local, utcnow
from dispatch.core.config import get_settings
from dispatch.core.errors import Unprocessable
from dispatch.stats.sql import E, P, V

MONTH_PATTERN = r"^(20\d\d|2100)-(0[1-9]|1[0-2])$"
ZERO = Decimal("0")


def parse_month(value: str | None) -> date:
    """'2026-11' as its first day; default: this month (Asia/Shanghai)."""
    if value is None:
        return local(utcnow()).date().replace(day=1)
    if not re.match(MONTH_PATTERN, value):
        raise Unprocessable("month must be YYYY-MM between 2000-01 and 2100-12")
    year, month = value.split("-")
    return date(int(year), int(month), 1)


def month_span(first: date) -> tuple[datetime, datetime]:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return datetime.combine(first, time(0), LOCAL_TZ), datetime.combine(following, time(0), LOCAL_TZ)


def entitlement(assistance: str) -> Decimal:
    s = get_settings()
    return {"dibao": s.subsidy_monthly_dibao, "low_income": s.subsidy_monthly_low_income, "tekun": s.subsidy_monthly_tekun}.get(assistance, ZERO)  # fmt: skip


def price(kind: str) -> Decimal:
    s = get_settings()
    return {
        "meal": s.price_meal,
        "day_care": s.price_day_care,
        "home_care": s.price_home_care,
        "visit": s.price_visit,
        "emergency": s.price_emergency,
    }.get(kind, ZERO)


@dataclass
class Draw:
    visit_id: int
    request_id: int
    elder_id: int
    provider_id: int
    kind: str
    ended_at: datetime
    status: str  # drawn, unverified, failed, deceased
    price: Decimal = ZERO
    subsidy: Decimal = ZERO

    @property
    def self_pay(self) -> Decimal:
        return self.price - self.subsidy


@dataclass
class ElderAccount:
    elder_id: int
    name: str
    township: str
    assistance: str
    entitlement: Decimal
    subsidy: Decimal = ZERO
    self_pay: Decimal = ZERO
    visits: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.entitlement - self.subsidy


@dataclass
class MonthLedger:
    month: date
    township: str | None
    accounts: dict[int, ElderAccount] = field(default_factory=dict)
    draws: list[Draw] = field(default_factory=list)
    providers: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # id -> name, kind, township


def _accounts(session: Session, first: date, end: datetime, township: str | None) -> dict[int, ElderAccount]:
    """Every elder registered by the month's end and alive at its start."""
    stmt = select(E.c.id, E.c.name, E.c.township, E.c.assistance).where(
        E.c.created_at < end, or_(E.c.deceased_on.is_(None), E.c.deceased_on >= first)
    )
    if township is not None:
        stmt = stmt.where(E.c.township == township)
    return {
        eid: ElderAccount(eid, name, town, assistance, entitlement(assistance))
        for eid, name, town, assistance in session.execute(stmt).all()
    }


def month_ledger(session: Session, *, month: date, township: str | None = None) -> MonthLedger:
    month = month.replace(day=1)
    start, end = month_span(month)
    ledger = MonthLedger(month=month, township=township, accounts=_accounts(session, month, end, township))
    stmt = (
        select(
            V.c.id, V.c.request_id, V.c.elder_id, V.c.provider_id, V.c.kind, V.c.check_out_at,
            V.c.outcome, V.c.verified, E.c.deceased_on,
        )
        .select_from(V.join(E, E.c.id == V.c.elder_id))
        .where(V.c.check_out_at >= start, V.c.check_out_at < end)
        .order_by(V.c.check_out_at, V.c.id)
    )  # fmt: skip
    if township is not None:
        stmt = stmt.where(E.c.township == township)
    for vid, rid, eid, pid, kind, ended, outcome, verified, deceased_on in session.execute(stmt).all():
        draw = Draw(vid, rid, eid, pid, kind, ended, status="drawn")
        account = ledger.accounts.get(eid)
        if outcome != "completed":
            draw.status = "failed"
        elif not verified:
            draw.status = "unverified"
        elif deceased_on is not None and local(ended).date() >= deceased_on:
            draw.status = "deceased"
        elif account is not None:
            draw.price = price(kind)
            draw.subsidy = min(draw.price, account.remaining)
            account.subsidy += draw.subsidy
            account.self_pay += draw.self_pay
            account.visits += 1
        ledger.draws.append(draw)
    ids = {d.provider_id for d in ledger.draws}
    if ids:
        rows = session.execute(select(P.c.id, P.c.name, P.c.kind, P.c.township).where(P.c.id.in_(ids))).all()
        ledger.providers = {pid: (name, kind, town) for pid, name, kind, town in rows}
    return ledger
