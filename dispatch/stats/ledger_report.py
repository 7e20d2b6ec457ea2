"""The subsidy ledger as the API and the CSV files show it: totals, per provider, per township,
per assistance category, per elder and per visit. Amounts in yuan, rounded to the fen."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from dispatch.core.clock import local
from dispatch.stats.ledger import ZERO, ElderAccount, MonthLedger


def yuan(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


class NotDrawn(BaseModel):
    unverified: int
    failed: int
    deceased: int


class LedgerTotals(BaseModel):
    elders_entitled: int = Field(description="Elders with a monthly entitlement (dibao, low income, 特困).")
    entitlement: float
    visits_drawn: int
    value: float = Field(description="Price of every drawing visit.")
    subsidy: float = Field(description="What the entitlements paid.")
    self_pay: float = Field(description="What was beyond the entitlement.")
    not_drawn: NotDrawn


class ProviderLine(BaseModel):
    provider_id: int
    name: str
    kind: str
    township: str
    visits: int
    value: float
    subsidy: float
    self_pay: float


class GroupLine(BaseModel):
    key: str = Field(description="The township, or the assistance category.")
    elders_entitled: int
    entitlement: float
    visits: int
    value: float
    subsidy: float
    self_pay: float


class Ledger(BaseModel):
    month: str
    township: str | None
    totals: LedgerTotals
    by_provider: list[ProviderLine]
    by_township: list[GroupLine]
    by_category: list[GroupLine]


class ElderLine(BaseModel):
    elder_id: int
    name: str
    township: str
    assistance: str
    entitlement: float
    visits: int
    subsidy: float
    self_pay: float
    remaining: float


def _groups(ledger: MonthLedger, attr: str) -> list[GroupLine]:
    lines: dict[str, list[Decimal]] = {}
    entitled: dict[str, int] = {}
    visits: dict[str, int] = {}
    for a in ledger.accounts.values():
        key = getattr(a, attr)
        sums = lines.setdefault(key, [ZERO, ZERO, ZERO])
        sums[0] += a.entitlement
        sums[1] += a.subsidy
        sums[2] += a.self_pay
        entitled[key] = entitled.get(key, 0) + (1 if a.entitlement > 0 else 0)
        visits[key] = visits.get(key, 0) + a.visits
    return sorted(
        (
            GroupLine(
                key=key,
                elders_entitled=entitled[key],
                entitlement=yuan(ent),
                visits=visits[key],
                value=yuan(sub + own),
                subsidy=yuan(sub),
                self_pay=yuan(own),
            )
            for key, (ent, sub, own) in lines.items()
        ),
        key=lambda g: (-g.subsidy, g.key),
    )


def provider_lines(ledger: MonthLedger) -> list[ProviderLine]:
    sums: dict[int, list[Decimal]] = {}
    counts: dict[int, int] = {}
    for d in ledger.draws:
        if d.status != "drawn" or d.elder_id not in ledger.accounts:
            continue
        line = sums.setdefault(d.provider_id, [ZERO, ZERO])
        line[0] += d.price
        line[1] += d.subsidy
        counts[d.provider_id] = counts.get(d.provider_id, 0) + 1
    lines = []
    for pid, (value, subsidy) in sums.items():
        name, kind, township = ledger.providers.get(pid, ("", "", ""))
        lines.append(
            ProviderLine(
                provider_id=pid,
                name=name,
                kind=kind,
                township=township,
                visits=counts[pid],
                value=yuan(value),
                subsidy=yuan(subsidy),
                self_pay=yuan(value - subsidy),
            )
        )
    return sorted(lines, key=lambda p: (-p.subsidy, p.provider_id))


def report(ledger: MonthLedger) -> Ledger:
    accounts = ledger.accounts.values()
    refused = {s: sum(1 for d in ledger.draws if d.status == s) for s in ("unverified", "failed", "deceased")}
    subsidy = sum((a.subsidy for a in accounts), ZERO)
    own = sum((a.self_pay for a in accounts), ZERO)
    totals = LedgerTotals(
        elders_entitled=sum(1 for a in accounts if a.entitlement > 0),
        entitlement=yuan(sum((a.entitlement for a in accounts), ZERO)),
        visits_drawn=sum(a.visits for a in accounts),
        value=yuan(subsidy + own),
        subsidy=yuan(subsidy),
        self_pay=yuan(own),
        not_drawn=NotDrawn(**refused),
    )
    return Ledger(
        month=ledger.month.strftime("%Y-%m"),
        township=ledger.township,
        totals=totals,
        by_provider=provider_lines(ledger),
        by_township=_groups(ledger, "township"),
        by_category=_groups(ledger, "assistance"),
    )


def elder_line(a: ElderAccount) -> ElderLine:
    return ElderLine(
        elder_id=a.elder_id,
        name=a.name,
        township=a.township,
        assistance=a.assistance,
        entitlement=yuan(a.entitlement),
        visits=a.visits,
        subsidy=yuan(a.subsidy),
        self_pay=yuan(a.self_pay),
        remaining=yuan(a.remaining),
    )


def elder_lines(ledger: MonthLedger) -> list[ElderLine]:
    """Elders with an entitlement or a drawing visit, by township then id."""
    rows = [a for a in ledger.accounts.values() if a.entitlement > 0 or a.visits]
    return [elder_line(a) for a in sorted(rows, key=lambda a: (a.township, a.elder_id))]


class CsvView(StrEnum):
    PROVIDER = "provider"
    TOWNSHIP = "township"
    CATEGORY = "category"
    ELDER = "elder"
    VISIT = "visit"


def csv_text(ledger: MonthLedger, view: CsvView) -> Iterator[str]:
    """The ledger as CSV (UTF-8 with a byte-order mark, so that Excel reads the Chinese)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    month = ledger.month.strftime("%Y-%m")
    if view == CsvView.VISIT:
        writer.writerow(["month", "visit_id", "request_id", "elder_id", "provider_id", "kind", "ended_at", "status", "price", "subsidy", "self_pay"])  # fmt: skip
        for d in ledger.draws:
            writer.writerow([month, d.visit_id, d.request_id, d.elder_id, d.provider_id, d.kind, local(d.ended_at).isoformat(), d.status, yuan(d.price), yuan(d.subsidy), yuan(d.self_pay)])  # fmt: skip
    elif view == CsvView.ELDER:
        writer.writerow(["month", "elder_id", "township", "assistance", "entitlement", "visits", "subsidy", "self_pay", "remaining"])  # fmt: skip
        for e in elder_lines(ledger):
            writer.writerow([month, e.elder_id, e.township, e.assistance, e.entitlement, e.visits, e.subsidy, e.self_pay, e.remaining])  # fmt: skip
    elif view == CsvView.PROVIDER:
        writer.writerow(
            ["month", "provider_id", "name", "kind", "township", "visits", "value", "subsidy", "self_pay"]
        )
        for p in provider_lines(ledger):
            writer.writerow([month, p.provider_id, p.name, p.kind, p.township, p.visits, p.value, p.subsidy, p.self_pay])  # fmt: skip
    else:
        writer.writerow(["month", view.value, "elders_entitled", "entitlement", "visits", "value", "subsidy", "self_pay"])  # fmt: skip
        for g in _groups(ledger, "township" if view == CsvView.TOWNSHIP else "assistance"):
            writer.writerow([month, g.key, g.elders_entitled, g.entitlement, g.visits, g.value, g.subsidy, g.self_pay])  # fmt: skip
    yield "\ufeff" + buffer.getvalue()
