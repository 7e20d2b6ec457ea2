"""`GET /api/audit`: the audit log, for admins only (who read or changed which elder's record,
what, when, from where). There is no endpoint that changes it, and the database refuses to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.errors import BadRequest
from dispatch.core.validation import IdQuery, Offset

router = APIRouter(prefix="/api/audit", tags=["audit"])
Admin = Annotated[Principal, require_roles(Role.ADMIN)]


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    actor_role: str
    elder_id: int | None
    action: str
    what: str
    client: str


@router.get("", response_model=list[AuditRead])
def list_audit(
    session: SessionDep,
    _: Admin,
    elder_id: IdQuery = None,
    actor_id: IdQuery = None,
    action: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[AuditRead]:
    """Entries newest first; `from` included, `to` excluded (ISO 8601 with an offset)."""
    if since is not None and until is not None and until <= since:
        raise BadRequest("`to` must be after `from`")
    rows = audit.search(
        session,
        elder_id=elder_id,
        actor_id=actor_id,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [AuditRead.model_validate(r, from_attributes=True) for r in rows]
