"""Provider registry services: typed, keyword-only, session first, domain errors only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role
from dispatch.core.errors import NotFound
from services.models import Caregiver, Provider
from services.schemas import (
    CaregiverCreate,
    CaregiverRead,
    Hours,
    ProviderCreate,
    ProviderRead,
    ProviderUpdate,
)


def create_provider(*, session: Session, provider_in: ProviderCreate) -> Provider:
    data = provider_in.model_dump(exclude={"hours"})
    provider = Provider(**data, open_time=provider_in.hours.open, close_time=provider_in.hours.close)
    session.add(provider)
    session.flush()
    return provider


def get_provider(*, session: Session, provider_id: int, principal: Principal | None = None) -> Provider:
    """A provider in the caller's scope (a provider account sees only its own), else NotFound."""
    provider = session.get(Provider, provider_id)
    if provider is None or (principal is not None and not can_see_provider(principal, provider_id)):
        raise NotFound(f"provider {provider_id} not found")
    return provider


def can_see_provider(principal: Principal, provider_id: int) -> bool:
    if principal.role == Role.PROVIDER:
        return principal.provider_id == provider_id
    return principal.role != Role.FAMILY


def list_providers(
    *,
    session: Session,
    principal: Principal,
    kind: str | None = None,
    township: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Provider]:
    stmt = select(Provider)
    if principal.role == Role.PROVIDER:
        stmt = stmt.where(Provider.id == principal.provider_id)
    if kind:
        stmt = stmt.where(Provider.kind == kind)
    if township:
        stmt = stmt.where(Provider.township == township)
    return session.exec(stmt.order_by(col(Provider.id)).offset(offset).limit(limit)).all()


def update_provider(*, session: Session, provider: Provider, provider_in: ProviderUpdate) -> Provider:
    changes = provider_in.model_dump(exclude_unset=True, exclude={"hours"})
    if provider_in.hours is not None:
        changes.update(open_time=provider_in.hours.open, close_time=provider_in.hours.close)
    for key, value in changes.items():
        setattr(provider, key, value)
    session.add(provider)
    session.flush()
    return provider


def add_caregiver(*, session: Session, provider: Provider, caregiver_in: CaregiverCreate) -> Caregiver:
    assert provider.id is not None
    caregiver = Caregiver(provider_id=provider.id, **caregiver_in.model_dump())
    session.add(caregiver)
    session.flush()
    return caregiver


def list_caregivers(*, session: Session, provider_id: int) -> Sequence[Caregiver]:
    stmt = select(Caregiver).where(Caregiver.provider_id == provider_id).order_by(col(Caregiver.id))
    return session.exec(stmt).all()


def provider_read(provider: Provider) -> ProviderRead:
    assert provider.id is not None
    return ProviderRead(
        id=provider.id,
        name=provider.name,
        kind=provider.kind,  # type: ignore[arg-type]
        township=provider.township,
        address=provider.address,
        lat=provider.lat,
        lon=provider.lon,
        phone=provider.phone,
        capacity=provider.capacity,
        service_radius_km=provider.service_radius_km,
        skills=list(provider.skills),
        hours=Hours(open=provider.open_time, close=provider.close_time),
        active=provider.active,
    )


def caregiver_read(caregiver: Caregiver) -> CaregiverRead:
    assert caregiver.id is not None
    return CaregiverRead.model_validate(caregiver, from_attributes=True)
