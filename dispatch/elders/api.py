"""Elder registry endpoints of API.md. Every read and change is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import Session

from dispatch.core import audit
from dispatch.core.auth import CurrentPrincipal, Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath, Offset, PhoneNumber, Township
from dispatch.elders import service as elder_service
from dispatch.elders.schemas import (
    ElderCreate,
    ElderRead,
    ElderUpdate,
    FamilyLinkCreate,
    FamilyLinkUpdate,
    FamilyMember,
)

router = APIRouter(prefix="/api/elders", tags=["elders"])

ElderEditor = Annotated[Principal, require_roles(Role.OPERATOR, Role.MANAGER, Role.ADMIN)]
ElderReader = Annotated[Principal, require_roles(Role.OPERATOR, Role.MANAGER, Role.ADMIN, Role.FAMILY)]


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("", response_model=ElderRead, status_code=201)
def create_elder(
    elder_in: ElderCreate, request: Request, session: SessionDep, principal: ElderEditor
) -> ElderRead:
    """Register an elder."""
    elder = elder_service.create_elder(session=session, elder_in=elder_in)
    assert elder.id is not None
    audit.record(
        principal=principal, action="create", elder_ids=[elder.id], client=_client(request), session=session
    )
    return elder_service.elder_read(session=session, principal=principal, elder=elder)


@router.get("", response_model=list[ElderRead])
def find_elders(
    request: Request,
    session: SessionDep,
    principal: ElderReader,
    phone: PhoneNumber | None = None,
    township: Township | None = None,
    name: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> list[ElderRead]:
    """Caller lookup (`phone`, exact on the normalised number, the elder's or a relative's) and listing."""
    elders = elder_service.find_elders(
        session=session,
        principal=principal,
        phone=phone,
        township=township,
        name=name,
        limit=limit,
        offset=offset,
    )
    ids = [e.id for e in elders if e.id is not None]
    audit.record(principal=principal, action="read", elder_ids=ids, what="lookup", client=_client(request))
    return [elder_service.elder_read(session=session, principal=principal, elder=e) for e in elders]


@router.get("/{elder_id}", response_model=ElderRead)
def get_elder(
    elder_id: IdPath, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> ElderRead:
    elder = elder_service.get_elder(session=session, principal=principal, elder_id=elder_id)
    audit.record(principal=principal, action="read", elder_ids=[elder_id], client=_client(request))
    return elder_service.elder_read(session=session, principal=principal, elder=elder)


@router.patch("/{elder_id}", response_model=ElderRead)
def update_elder(
    elder_id: IdPath, elder_in: ElderUpdate, request: Request, session: SessionDep, principal: ElderEditor
) -> ElderRead:
    elder = elder_service.get_elder(session=session, principal=principal, elder_id=elder_id)
    elder = elder_service.update_elder(session=session, elder=elder, elder_in=elder_in)
    fields = ",".join(sorted(elder_in.model_dump(exclude_unset=True)))
    audit.record(
        principal=principal,
        action="update",
        elder_ids=[elder_id],
        what=fields,
        client=_client(request),
        session=session,
    )
    return elder_service.elder_read(session=session, principal=principal, elder=elder)


@router.post("/{elder_id}/family", response_model=FamilyMember, status_code=201)
def link_family(
    elder_id: IdPath, link_in: FamilyLinkCreate, request: Request, session: SessionDep, principal: ElderEditor
) -> FamilyMember:
    """Link a family account to the elder, with the elder's consent on what it may see."""
    elder = elder_service.get_elder(session=session, principal=principal, elder_id=elder_id)
    link = elder_service.link_family(session=session, elder=elder, link_in=link_in)
    # The audit log is the consent record: who recorded what the elder agreed to, and when.
    audit.record(
        principal=principal,
        action="link_family",
        elder_ids=[elder_id],
        what=f"{link_in.username} consent={link.consent}",
        client=_client(request),
        session=session,
    )
    return _member(session, principal, elder_id, link.id)


@router.patch("/{elder_id}/family/{user_id}", response_model=FamilyMember)
def update_family_link(
    elder_id: IdPath,
    user_id: IdPath,
    link_in: FamilyLinkUpdate,
    request: Request,
    session: SessionDep,
    principal: ElderEditor,
) -> FamilyMember:
    """Change what a linked relative may see (the elder's consent), or the relation."""
    elder = elder_service.get_elder(session=session, principal=principal, elder_id=elder_id)
    link = elder_service.update_family_link(session=session, elder=elder, user_id=user_id, link_in=link_in)
    audit.record(
        principal=principal,
        action="family_consent",
        elder_ids=[elder_id],
        what=f"account {user_id} consent={link.consent} relation={link.relation}",
        client=_client(request),
        session=session,
    )
    return _member(session, principal, elder_id, link.id)


def _member(session: Session, principal: Principal, elder_id: int, link_id: int | None) -> FamilyMember:
    link, user = next(
        (lk, u) for lk, u in elder_service.family_of(session=session, elder_id=elder_id) if lk.id == link_id
    )
    return elder_service.member_read(principal=principal, link=link, user=user)
