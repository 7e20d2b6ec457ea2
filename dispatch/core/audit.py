"""Append-only audit log of every read and change of an elder's record (PIPL art. 56).

Who (account and role), which elder, what, when, from where (the client address). Changes are
written in the transaction of the change: `record(..., session=)` from the endpoints that edit
the registry, and one row per event of the event log that names an elder (`record_change`,
called by `dispatch.core.events.emit`), so every lifecycle step of every request is in it,
whoever or whatever caused it. Reads are written in a short transaction of their own, so a
read-only request still leaves its trace. The database refuses UPDATE and DELETE on the table
(triggers in the migration); only admins read it (`dispatch/core/audit_api.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Field, Session, SQLModel, col, select

from dispatch.core.bulk import execute_many
from dispatch.core.clock import utcnow
from dispatch.core.types import UTCDateTime

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from dispatch.core.auth import Principal

log = logging.getLogger(__name__)

# session.info key: (principal, client address) of whoever owns the session's unit of work.
ACTOR = "eldercare_audit_actor"


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


_INSERT_ENTRIES = AuditEntry.__table__.insert()  # type: ignore[attr-defined]


def client_of(connection: HTTPConnection | None) -> str:
    """Where a request came from (the proxy's forwarded address when uvicorn trusts it)."""
    if connection is None or connection.client is None:
        return ""
    return connection.client.host


def bind_actor(session: Session, principal: Principal, client: str = "") -> None:
    """Name who owns this session's unit of work, for the changes it audits."""
    session.info[ACTOR] = (principal, client)


def record(
    *,
    principal: Principal | None,
    action: str,
    elder_ids: Iterable[int | None],
    what: str = "",
    client: str = "",
    session: Session | None = None,
) -> None:
    """Audit a change inside its own transaction (pass `session`), or a read in a short
    transaction of its own (a read-only request session must not start writing)."""
    ids = sorted({i for i in elder_ids if i is not None})
    if not ids:
        return
    rows = [
        AuditEntry(
            actor_id=principal.id if principal else None,
            actor_role=principal.role.value if principal else "system",
            elder_id=elder_id,
            action=action[:32],
            what=what[:200],
            client=client[:64],
        )
        for elder_id in ids
    ]
    if session is not None:
        session.add_all(rows)
        return
    from dispatch.core.db import session_scope

    with session_scope() as own:
        own.add_all(rows)


def record_read(
    connection: HTTPConnection | None, principal: Principal, elder_ids: Iterable[int | None], what: str
) -> None:
    """An API answer that carries elder data: one row per elder in it."""
    record(principal=principal, action="read", elder_ids=elder_ids, what=what, client=client_of(connection))


def actor_of(session: Session) -> tuple[Principal | None, str]:
    """Who owns the session's unit of work: the bound actor (a webhook, a batch), else the
    signed-in caller of the HTTP request it serves, else nobody (a job: the system)."""
    if ACTOR in session.info:
        return session.info[ACTOR]  # type: ignore[no-any-return]
    from dispatch.core.db import REQUEST_KEY

    request = session.info.get(REQUEST_KEY)
    if request is None:
        return None, ""
    return getattr(request.state, "principal", None), client_of(request)


def record_change(session: Session, *, elder_id: int, action: str, what: str) -> None:
    """A change written in `session`'s transaction, by whoever owns it (else by the system)."""
    principal, client = actor_of(session)
    record(
        principal=principal, action=action, elder_ids=[elder_id], what=what, client=client, session=session
    )


def record_changes(session: Session, changes: Sequence[tuple[Principal | None, str, int, str, str]]) -> None:
    """Many changes at once, set-wise, in `session`'s transaction: (principal, client, elder_id,
    action, what) each; a missing principal or client is the session's owner's."""
    if not changes:
        return
    owner, owner_client = actor_of(session)
    now = utcnow()
    rows = []
    for principal, client, elder_id, action, what in changes:
        who = principal or owner
        rows.append(
            {
                "at": now,
                "actor_id": who.id if who else None,
                "actor_role": who.role.value if who else "system",
                "elder_id": elder_id,
                "action": action[:32],
                "what": what[:200],
                "client": (client or owner_client)[:64],
            }
        )
    execute_many(session.connection(), _INSERT_ENTRIES, rows)  # Core: the ORM costs more per row


def search(
    session: Session,
    *,
    elder_id: int | None = None,
    actor_id: int | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AuditEntry]:
    """Entries newest first, filtered by elder, actor, action and time (`until` excluded)."""
    stmt = select(AuditEntry)
    if elder_id is not None:
        stmt = stmt.where(AuditEntry.elder_id == elder_id)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        stmt = stmt.where(col(AuditEntry.at) >= since)
    if until is not None:
        stmt = stmt.where(col(AuditEntry.at) < until)
    stmt = stmt.order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)
    return session.exec(stmt).all()
