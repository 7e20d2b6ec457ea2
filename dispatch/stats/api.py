"""Statistics endpoints (managers and admin): API.md's summary and export, breakdowns, the
waiting-time distribution, the plan's indicators and the subsidy ledger."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import Offset, Township
from dispatch.stats import breakdown as breakdown_service
from dispatch.stats import export, indicators, ledger, ledger_report
from dispatch.stats.breakdown import By, Metric
from dispatch.stats.ledger_report import CsvView, ElderLine, Ledger
from dispatch.stats.period import PeriodDep
from dispatch.stats.schemas import Breakdown, Distribution, Indicators, Summary
from dispatch.stats.summary import summary

router = APIRouter(prefix="/api/stats", tags=["statistics"])
Manager = Annotated[Principal, require_roles(Role.MANAGER, Role.ADMIN)]
Month = Annotated[
    str | None, Query(pattern=ledger.MONTH_PATTERN, description="YYYY-MM (default: this month).")
]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV, UTF-8 with BOM"}
}


def _csv(rows: Any, filename: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/summary", response_model=Summary)
def get_summary(session: SessionDep, _: Manager, period: PeriodDep) -> Summary:
    """Requests created in the period (local days, `from` and `to` included; default the last
    30 days), in the township if given: counts, waiting times, rates, ratings, providers."""
    return summary(session, period)


@router.get("/breakdown", response_model=Breakdown)
def get_breakdown(session: SessionDep, _: Manager, period: PeriodDep, by: By = By.DAY) -> Breakdown:
    """The summary's figures by local day, hour of day, township, provider (with utilization) or kind."""
    return breakdown_service.breakdown(session, period, by)


@router.get("/distribution", response_model=Distribution)
def get_distribution(
    session: SessionDep, _: Manager, period: PeriodDep, metric: Metric = Metric.SECONDS_TO_ASSIGN
) -> Distribution:
    """How many requests waited how long (buckets up to each bound, exclusive)."""
    return breakdown_service.distribution(session, period, metric)


@router.get("/indicators", response_model=Indicators)
def get_indicators(session: SessionDep, _: Manager, period: PeriodDep) -> Indicators:
    """The plan's indicators with their targets, and ratings and complaints per provider."""
    return indicators.indicators(session, period)


@router.get("/export.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
def export_csv(_: Manager, period: PeriodDep) -> StreamingResponse:
    """One row per request of the period (no names, phones or addresses)."""
    name = f"requests_{period.first_day}_{period.last_day}.csv"
    return _csv(export.request_rows(period), name)


@router.get("/ledger", response_model=Ledger)
def get_ledger(
    session: SessionDep, _: Manager, month: Month = None, township: Township | None = None
) -> Ledger:
    """The month's subsidy ledger: entitlements, what verified visits drew, per provider,
    township and assistance category."""
    first = ledger.parse_month(month)
    return ledger_report.report(ledger.month_ledger(session, month=first, township=township))


@router.get("/ledger/elders", response_model=list[ElderLine])
def get_ledger_elders(
    http: Request,
    session: SessionDep,
    principal: Manager,
    month: Month = None,
    township: Township | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> list[ElderLine]:
    """Each entitled (or drawing) elder's month: entitlement, subsidy drawn, own payment, remaining."""
    first = ledger.parse_month(month)
    lines = ledger_report.elder_lines(ledger.month_ledger(session, month=first, township=township))
    page = lines[offset : offset + limit]
    audit.record_read(http, principal, (line.elder_id for line in page), "subsidy ledger")
    return page


@router.get("/ledger.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
def get_ledger_csv(
    http: Request,
    session: SessionDep,
    principal: Manager,
    month: Month = None,
    township: Township | None = None,
    by: CsvView = CsvView.PROVIDER,
) -> StreamingResponse:
    """The month's ledger as CSV: by provider (default), township, category, elder or visit."""
    first = ledger.parse_month(month)
    month_ledger = ledger.month_ledger(session, month=first, township=township)
    if by in (CsvView.ELDER, CsvView.VISIT):  # rows per elder: an export of elders' records
        ids = [line.elder_id for line in ledger_report.elder_lines(month_ledger)]
        ids += [d.elder_id for d in month_ledger.draws]
        audit.record_read(http, principal, ids, f"subsidy ledger export by {by.value}")
    return _csv(ledger_report.csv_text(month_ledger, by), f"ledger_{first:%Y-%m}_{by.value}.csv")
