"""What the operator console needs besides the event stream itself.

The board is fed only by `WS /ws/events`. `GET /api/console/board-start` tells it where in the
event log to start so that the replay covers what an operator must see — every request still
waiting for a provider or an operator (queued, offered, escalated), however old, and everything
of the last `hours` — without replaying the platform's whole history on each page load.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role, require_roles
from dispatch.core.clock import utcnow
from dispatch.core.db import SessionDep
from dispatch.core.events import Event, last_seq
from dispatch.core.geo import TOWNSHIPS
from dispatch.orders.models import ServiceRequest

router = APIRouter(prefix="/api/console", tags=["console"])
Console = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN)]
Staff = Annotated[Principal, require_roles(Role.OPERATOR, Role.ADMIN, Role.MANAGER)]

WAITING = ("queued", "offered", "escalated")


class BoardStart(BaseModel):
    since: int  # open the websocket with since=<this>
    last_seq: int  # the newest event right now
    from_time: str  # the start of the "recent" period, ISO 8601


class Township(BaseModel):
    name: str
    lat: float
    lon: float


def _first_seq_of(session: Session, request_id: int | None) -> int | None:
    if request_id is None:
        return None
    return session.exec(select(func.min(Event.seq)).where(Event.request_id == request_id)).one()


def board_start(session: Session, *, hours: int) -> BoardStart:
    """Requests are numbered in creation order and each one's first event is its creation, so
    the oldest request to show gives the first event to replay (two indexed lookups each)."""
    cutoff = utcnow() - timedelta(hours=hours)
    newest = last_seq(session)
    oldest_recent = session.exec(
        select(func.min(ServiceRequest.id)).where(col(ServiceRequest.created_at) >= cutoff)
    ).one()
    oldest_waiting = session.exec(
        select(func.min(ServiceRequest.id)).where(col(ServiceRequest.status).in_(WAITING))
    ).one()
    # Everything after the first of these events is replayed, so an older job that changed since
    # (assigned yesterday, completed today) shows as well; the board reads its current state.
    firsts = [s for s in (_first_seq_of(session, oldest_recent), _first_seq_of(session, oldest_waiting)) if s]
    since = min(firsts) - 1 if firsts else newest
    return BoardStart(since=max(since, 0), last_seq=newest, from_time=cutoff.isoformat())


@router.get("/board-start", response_model=BoardStart)
def get_board_start(
    session: SessionDep, _: Console, hours: Annotated[int, Query(ge=1, le=72)] = 24
) -> BoardStart:
    """Where the console's event replay starts (`since`) and the current newest `seq`."""
    return board_start(session, hours=hours)


@router.get("/townships", response_model=list[Township])
def townships(_: Staff) -> list[Township]:
    """Jinghai's townships with their centres (the console's filters and default coordinates)."""
    return [Township(name=name, lat=lat, lon=lon) for name, (lat, lon) in TOWNSHIPS.items()]
