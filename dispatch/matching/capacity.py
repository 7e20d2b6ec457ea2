"""From the database to the matcher's plain data: providers (with caregivers and records),
requests, and the capacity in use (assigned jobs and pending offers)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import timedelta

from sqlalchemy import or_, select, text
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
    """Assigned, in-service and (recent) completed jobs, and pending offers (but `exclude_offer_id`)."""
    # Plain columns, not ORM objects: the matcher reads every holding of the district each run.
    since = utcnow() - _DAILY_LOOKBACK
    r = ServiceRequest
    jobs = select(
        r.provider_id,
        r.caregiver_id,
        r.kind,
        r.window_start,
        r.details,
        r.status,  # type: ignore[call-overload]
    ).where(
        col(r.provider_id).is_not(None),
        or_(
            col(r.status).in_(["assigned", "in_service"]),
            (col(r.status) == "completed") & (col(r.window_start) >= since),
        ),
    )
    pending = (
        select(Offer.provider_id, Offer.caregiver_id, r.kind, r.window_start, r.details)  # type: ignore[call-overload]
        .join(r, col(r.id) == Offer.request_id)
        .where(col(Offer.status) == OfferStatus.PENDING)
    )
    if provider_ids is not None:
        jobs = jobs.where(col(r.provider_id).in_(list(provider_ids)))
        pending = pending.where(col(Offer.provider_id).in_(list(provider_ids)))
    if exclude_offer_id is not None:
        pending = pending.where(col(Offer.id) != exclude_offer_id)
    out = [
        Holding(provider_id or 0, caregiver_id, kind, start, (details or {}).get("slot"), status)
        for provider_id, caregiver_id, kind, start, details, status in session.execute(jobs)
    ]
    out += [
        Holding(provider_id, caregiver_id, kind, start, (details or {}).get("slot"), "pending")
        for provider_id, caregiver_id, kind, start, details in session.execute(pending)
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
