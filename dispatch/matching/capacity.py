"""From the database to the matcher's plain data: providers (with caregivers and records),
requests, and the capacity in use (assigned jobs and pending offers)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, or_, select, text
from sqlmodel import Session, col

from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.matching.core import CaregiverInfo, Holding, ProviderInfo, RequestInfo
from dispatch.matching.scoring import ProviderRecord
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from services.models import Caregiver, Provider

# Daily capacity looks this far back: a window that started yesterday still counts today.
_DAILY_LOOKBACK = timedelta(days=2)


def load_providers(
    session: Session,
    ids: Collection[int] | None = None,
    *,
    records: Mapping[int, ProviderRecord] | None = None,
) -> list[ProviderInfo]:
    """Active providers with their active caregivers (two queries), and their records if given."""
    max_jobs = get_settings().caregiver_max_jobs
    stmt = select(Provider).where(col(Provider.active).is_(True))
    if ids is not None:
        stmt = stmt.where(col(Provider.id).in_(list(ids)))
    providers = list(session.scalars(stmt))
    cg_stmt = select(Caregiver).where(col(Caregiver.active).is_(True))
    if ids is not None:
        cg_stmt = cg_stmt.where(col(Caregiver.provider_id).in_(list(ids)))
    by_provider: dict[int, list[CaregiverInfo]] = {}
    for cg in session.scalars(cg_stmt):
        assert cg.id is not None
        by_provider.setdefault(cg.provider_id, []).append(
            CaregiverInfo(cg.id, frozenset(cg.skills), cg.shift_start, cg.shift_end, max_jobs)
        )
    records = records or {}
    return [
        provider_info(p, by_provider.get(p.id or 0, []), records.get(p.id or 0, ProviderRecord()))
        for p in providers
    ]


def provider_info(
    p: Provider, caregivers: list[CaregiverInfo], record: ProviderRecord | None = None
) -> ProviderInfo:
    assert p.id is not None
    return ProviderInfo(
        id=p.id,
        kind=p.kind,
        lat=p.lat,
        lon=p.lon,
        capacity=p.capacity,
        service_radius_km=p.service_radius_km,
        skills=frozenset(p.skills),
        open_time=p.open_time,
        close_time=p.close_time,
        caregivers=tuple(caregivers),
        record=record or ProviderRecord(),
    )


def request_info(
    r: ServiceRequest,
    lat: float,
    lon: float,
    excluded: Collection[int],
    *,
    refused: Collection[int] = (),
    served_by: Collection[int] = (),
    served_by_caregivers: Collection[int] = (),
) -> RequestInfo:
    """A request as the matcher sees it (an emergency is always urgent)."""
    assert r.id is not None
    return RequestInfo(
        id=r.id,
        version=r.version,
        kind=r.kind,
        priority="urgent" if r.kind == "emergency" else r.priority,
        created_at=r.created_at,
        lat=lat,
        lon=lon,
        window_start=r.window_start,
        window_end=r.window_end,
        slot=r.details.get("slot"),
        delivery=bool(r.details.get("delivery")),
        skills=frozenset(r.details.get("skills") or ()),
        excluded=frozenset(excluded),
        elder_id=r.elder_id,
        refused=frozenset(refused),
        served_by=frozenset(served_by),
        served_by_caregivers=frozenset(served_by_caregivers),
    )


def load_holdings(
    session: Session, provider_ids: Collection[int] | None = None, *, exclude_offer_id: int | None = None
) -> list[Holding]:
    """Assigned, in-service and (recent) completed jobs, and pending offers (but
    `exclude_offer_id`), counted in SQL: one row per group of holdings that take the same unit
    of capacity, so that the matcher's cost follows the district's pools, not its open jobs.

    Holdings of a home-care provider are one pool whatever their window; other providers'
    pools are per day, so their holdings are grouped by their exact window start (any start
    of a group gives its day)."""
    since = utcnow() - _DAILY_LOOKBACK
    r, p = ServiceRequest, Provider
    slot = _json_text(session, f"{r.__tablename__}.details", "slot")
    window = case((col(p.kind) == "home_care", None), else_=col(r.window_start))
    jobs = (
        select(
            r.provider_id,
            r.caregiver_id,
            r.kind,
            func.min(r.window_start),
            slot,
            r.status,
            func.count(),
        )  # type: ignore[call-overload]
        .join(p, col(p.id) == r.provider_id)
        .where(
            or_(
                col(r.status).in_(["assigned", "in_service"]),
                (col(r.status) == "completed") & (col(r.window_start) >= since),
            ),
        )
        .group_by(r.provider_id, r.caregiver_id, r.kind, slot, r.status, window)
    )
    pending = (
        select(Offer.provider_id, Offer.caregiver_id, r.kind, func.min(r.window_start), slot, func.count())  # type: ignore[call-overload]
        .join(r, col(r.id) == Offer.request_id)
        .join(p, col(p.id) == Offer.provider_id)
        .where(col(Offer.status) == OfferStatus.PENDING)
        .group_by(Offer.provider_id, Offer.caregiver_id, r.kind, slot, window)
    )
    if provider_ids is not None:
        jobs = jobs.where(col(r.provider_id).in_(list(provider_ids)))
        pending = pending.where(col(Offer.provider_id).in_(list(provider_ids)))
    if exclude_offer_id is not None:
        pending = pending.where(col(Offer.id) != exclude_offer_id)
    out = [
        Holding(provider_id, caregiver_id, kind, start, slot_, status, count)
        for provider_id, caregiver_id, kind, start, slot_, status, count in session.execute(jobs)
    ]
    out += [
        Holding(provider_id, caregiver_id, kind, start, slot_, "pending", count)
        for provider_id, caregiver_id, kind, start, slot_, count in session.execute(pending)
    ]
    return out


def _json_text(session: Session, column: str, key: str) -> ColumnElement[Any]:
    """The JSON `column`'s `key` as text, written out in the SQL rather than bound as a
    parameter, so that PostgreSQL sees the same expression in SELECT and GROUP BY."""
    assert key.isidentifier()
    if session.get_bind().dialect.name == "postgresql":
        return literal_column(f"{column}->>'{key}'")
    return literal_column(f"json_extract({column}, '$.{key}')")


def lock_providers(session: Session, provider_ids: Collection[int]) -> None:
    """Serialise capacity decisions per provider. SQLite already has one writer at a time;
    PostgreSQL locks the provider rows, in id order so that two lockers cannot deadlock."""
    if not provider_ids or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT id FROM provider WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
        {"ids": sorted(provider_ids)},
    )
