"""Provider registry endpoints of API.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from dispatch.core.auth import CurrentPrincipal, Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath, Offset, Township
from services import service as provider_service
from services.models import ProviderKind
from services.schemas import CaregiverCreate, CaregiverRead, ProviderCreate, ProviderRead, ProviderUpdate

router = APIRouter(prefix="/api/providers", tags=["providers"])

RegistryEditor = Annotated[Principal, require_roles(Role.MANAGER, Role.ADMIN)]
RegistryReader = Annotated[Principal, require_roles(Role.ADMIN, Role.MANAGER, Role.OPERATOR, Role.PROVIDER)]


@router.post("", response_model=ProviderRead, status_code=201)
def create_provider(provider_in: ProviderCreate, session: SessionDep, _: RegistryEditor) -> ProviderRead:
    """Register a day-care center, canteen or home-care provider."""
    provider = provider_service.create_provider(session=session, provider_in=provider_in)
    return provider_service.provider_read(provider)


@router.get("", response_model=list[ProviderRead])
def list_providers(
    session: SessionDep,
    principal: RegistryReader,
    kind: ProviderKind | None = None,
    township: Township | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[ProviderRead]:
    """Providers, filtered by kind and township. A provider account sees only itself."""
    rows = provider_service.list_providers(
        session=session, principal=principal, kind=kind, township=township, limit=limit, offset=offset
    )
    return [provider_service.provider_read(p) for p in rows]


@router.get("/{provider_id}", response_model=ProviderRead)
def get_provider(provider_id: IdPath, session: SessionDep, principal: CurrentPrincipal) -> ProviderRead:
    provider = provider_service.get_provider(session=session, provider_id=provider_id, principal=principal)
    return provider_service.provider_read(provider)


@router.patch("/{provider_id}", response_model=ProviderRead)
def update_provider(
    provider_id: IdPath, provider_in: ProviderUpdate, session: SessionDep, principal: RegistryEditor
) -> ProviderRead:
    provider = provider_service.get_provider(session=session, provider_id=provider_id, principal=principal)
    provider = provider_service.update_provider(session=session, provider=provider, provider_in=provider_in)
    return provider_service.provider_read(provider)


@router.post("/{provider_id}/caregivers", response_model=CaregiverRead, status_code=201)
def add_caregiver(
    provider_id: IdPath, caregiver_in: CaregiverCreate, session: SessionDep, principal: RegistryEditor
) -> CaregiverRead:
    provider = provider_service.get_provider(session=session, provider_id=provider_id, principal=principal)
    caregiver = provider_service.add_caregiver(session=session, provider=provider, caregiver_in=caregiver_in)
    return provider_service.caregiver_read(caregiver)


@router.get("/{provider_id}/caregivers", response_model=list[CaregiverRead])
def list_caregivers(
    provider_id: IdPath, session: SessionDep, principal: CurrentPrincipal
) -> list[CaregiverRead]:
    provider_service.get_provider(session=session, provider_id=provider_id, principal=principal)
    return [
        provider_service.caregiver_read(c)
        for c in provider_service.list_caregivers(session=session, provider_id=provider_id)
    ]
