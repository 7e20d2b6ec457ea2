"""Append-only audit log of every read and change of an elder's record (PIPL art. 56).

Rows are written in their own short transaction, so a read-only request still leaves its
trace, and the database refuses UPDATE and DELETE on the table (triggers in the migration).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Field, Session, SQLModel

from dispatch.core.auth import Principal
from dispatch.core.clock import utcnow
from dispatch.core.types import UTCDateTime

log = logging.getLogger(__name__)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor_id: int | None = Field(default=None, index=True)
    actor_role: str = Field(default="", max_length=16)
    elder_id: int | None = Field(default=None, index=True)
    action: str = Field(max_length=32)
    what: str = Field(default="", max_length=200)
    client: str = Field(default="", max_length=64)


def record(
    *,
    principal: Principal | None,
    action: str,
    elder_ids: list[int],
    what: str = "",
    client: str = "",
    session: Session | None = None,
) -> None:
    """Audit a change inside its own transaction (pass `session`), or a read in a short
    transaction of its own (a read-only request session must not start writing)."""
    if not elder_ids:
        return
    rows = [
        AuditEntry(
            actor_id=principal.id if principal else None,
            actor_role=principal.role.value if principal else "system",
            elder_id=elder_id,
            action=action,
            what=what[:200],
            client=client[:64],
        )
        for elder_id in elder_ids
    ]
    if session is not None:
        session.add_all(rows)
        return
    from dispatch.core.db import session_scope

    with session_scope() as own:
        own.add_all(rows)
