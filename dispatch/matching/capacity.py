"""Capacity in use, read from the database: assigned jobs and pending offers per provider."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import or_, select, text
from sqlmodel import Session, col

from dispatch.core.clock import utcnow
from dispatch.matching.core import CaregiverInfo, Holding, ProviderInfo
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from services.models import Caregiver, Provider

# Daily capacity looks this far back: a window that started yesterday still counts today.
_DAILY_LOOKBACK = timedelta(days=2)


def load_providers(session: Session, ids: Collection[int] | None = None) -> list[ProviderInfo]:
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
            CaregiverInfo(cg.id, frozenset(cg.skills), cg.shift_start, cg.shift_end)
        )
    return [provider_info(p, by_provider.get(p.id or 0, [])) for p in providers]


def provider_info(p: Provider, caregivers: list[CaregiverInfo]) -> ProviderInfo:
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
    )


def load_holdings(session: Session, provider_ids: Collection[int] | None = None) -> list[Holding]:
    """Assigned, in-service and (recent) completed jobs, and pending offers."""
    since = utcnow() - _DAILY_LOOKBACK
    jobs = select(ServiceRequest).where(
        col(ServiceRequest.provider_id).is_not(None),
        or_(
            col(ServiceRequest.status).in_(["assigned", "in_service"]),
            (col(ServiceRequest.status) == "completed") & (col(ServiceRequest.window_start) >= since),
        ),
    )
    pending = (
        select(Offer, ServiceRequest)
        .join(ServiceRequest, col(ServiceRequest.id) == Offer.request_id)
        .where(col(Offer.status) == OfferStatus.PENDING)
    )
    if provider_ids is not None:
        jobs = jobs.where(col(ServiceRequest.provider_id).in_(list(provider_ids)))
        pending = pending.where(col(Offer.provider_id).in_(list(provider_ids)))
    out = [
        Holding(r.provider_id or 0, r.caregiver_id, r.kind, r.window_start, r.details.get("slot"), r.status)
        for r in session.scalars(jobs)
    ]
    out += [
        Holding(o.provider_id, o.caregiver_id, r.kind, r.window_start, r.details.get("slot"), "pending")
        for o, r in session.execute(pending).all()
    ]
    return out


def lock_providers(session: Session, provider_ids: Collection[int]) -> None:
    """Serialise capacity decisions per provider. SQLite already has one writer at a time;
    PostgreSQL locks the provider rows, in id order so that two lockers cannot deadlock."""
    if not provider_ids or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT id FROM provider WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
        {"ids": sorted(provider_ids)},
    )
