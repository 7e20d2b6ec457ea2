"""Matching endpoints: the providers an elder refused (`/api/elders/{id}/refused-providers`).

Operators and admins only; the elder must be in the caller's scope (else 404); every read and
change is audited, as every other access to an elder's record is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdPath
from dispatch.matching import refusals
from dispatch.matching.schemas import RefusalCreate, RefusalRead

router = APIRouter(prefix="/api/elders/{elder_id}/refused-providers", tags=["matching"])
Dispatcher = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN)]


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


@router.get("", response_model=list[RefusalRead])
def list_refused(
    elder_id: IdPath, request: Request, session: SessionDep, principal: Dispatcher
) -> list[RefusalRead]:
    """The providers this elder refused: the matcher never offers the elder's requests to them."""
    rows = refusals.list_refusals(session=session, principal=principal, elder_id=elder_id)
    audit.record(
        principal=principal,
        action="read",
        elder_ids=[elder_id],
        what="refused_providers",
        client=_client(request),
    )
    return rows


@router.post("", response_model=RefusalRead, status_code=201)
def refuse(
    elder_id: IdPath, body: RefusalCreate, request: Request, session: SessionDep, principal: Dispatcher
) -> RefusalRead:
    """Record that the elder refused a provider; its pending offers for this elder are taken back
    and the requests go on to the next candidate. A second refusal of the same provider is 409."""
    read = refusals.add_refusal(session=session, principal=principal, elder_id=elder_id, refusal_in=body)
    audit.record(
        principal=principal,
        action="refuse_provider",
        elder_ids=[elder_id],
        what=f"provider {body.provider_id}: {body.reason}",
        client=_client(request),
        session=session,
    )
    return read


@router.delete("/{provider_id}", response_model=RefusalRead)
def unrefuse(
    elder_id: IdPath, provider_id: IdPath, request: Request, session: SessionDep, principal: Dispatcher
) -> RefusalRead:
    """Lift a refusal: the provider may be offered this elder's requests again."""
    read = refusals.remove_refusal(
        session=session, principal=principal, elder_id=elder_id, provider_id=provider_id
    )
    audit.record(
        principal=principal,
        action="unrefuse_provider",
        elder_ids=[elder_id],
        what=f"provider {provider_id}",
        client=_client(request),
        session=session,
    )
    return read
