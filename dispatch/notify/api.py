"""The outbox view: messages the platform sent or would send, with delivery status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from dispatch.core import audit
from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.db import SessionDep
from dispatch.core.validation import IdQuery, Offset
from dispatch.notify import service as notify_service
from dispatch.notify.models import MessageStatus
from dispatch.notify.schemas import MessageRead

router = APIRouter(prefix="/api/messages", tags=["messages"])

Staff = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN, Role.MANAGER)]


@router.get("", response_model=list[MessageRead])
def list_messages(
    http: Request,
    session: SessionDep,
    principal: Staff,
    request_id: IdQuery = None,
    status: MessageStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
    audience: Annotated[str | None, Query(pattern=r"^[a-z_]{1,12}$")] = None,
    purpose: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}$")] = None,
) -> list[MessageRead]:
    """Newest first. Numbers are masked for roles that need not see them."""
    rows = notify_service.list_messages(
        session,
        request_id=request_id,
        status=status,
        limit=limit,
        offset=offset,
        audience=audience,
        purpose=purpose,
    )
    audit.record_read(http, principal, (m.elder_id for m in rows), "messages")
    return [notify_service.message_read(principal, m) for m in rows]
