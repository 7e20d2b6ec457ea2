"""`WS /ws/events?token=&since=[&elder_id=]`: every stored event after `since` in the caller's
scope (and of that one elder, if given), in order, then the live ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlmodel import col, select
from starlette.websockets import WebSocketState

from dispatch.console.hub import CLOSE_TOO_SLOW, Client, EventHub, Frame, to_frame
from dispatch.console.wire import WIRE
from dispatch.core.auth import Principal, Role, principal_from_token
from dispatch.core.config import get_settings
from dispatch.core.db import new_session
from dispatch.core.errors import DomainError
from dispatch.core.events import Event
from dispatch.elders import service as elder_service

log = logging.getLogger(__name__)
router = APIRouter()

REPLAY_PAGE = 1000
CLOSE_POLICY = 1008  # authentication or origin refused
CLOSE_TIMEOUT = 2.0


def origin_allowed(websocket: WebSocket) -> bool:
    """Browsers always send Origin: it must be this API's own origin or on the allow-list
    (stops cross-site websocket hijacking). Non-browser clients send none."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    host = websocket.headers.get("host", "")
    if urlsplit(origin).netloc == host:
        return True
    return origin in get_settings().origin_allow_list


def _authenticate(token: str, elder_id: int | None) -> tuple[Principal, frozenset[int]]:
    with new_session(write=False) as session:
        principal = principal_from_token(session, token)
        elders: frozenset[int] = frozenset()
        if principal.role == Role.FAMILY:
            elders = frozenset(elder_service.linked_elder_ids(session=session, user_id=principal.id))
        if elder_id is not None:
            # An elder outside the caller's scope is refused like an unknown one (no probing).
            elder_service.get_elder(session=session, principal=principal, elder_id=elder_id)
        return principal, elders


def _replay_page(client: Client, since: int) -> list[Frame]:
    """Stored events after `since` in the client's scope, filtered in SQL."""
    stmt = select(Event).where(col(Event.seq) > since)
    if client.only_elder is not None:
        stmt = stmt.where(Event.elder_id == client.only_elder)
    role = client.principal.role
    if role == Role.PROVIDER:
        stmt = stmt.where(Event.provider_id == client.principal.provider_id)
    elif role == Role.FAMILY:
        stmt = stmt.where(col(Event.elder_id).in_(client.elder_ids))
    with new_session(write=False) as session:
        rows = session.exec(stmt.order_by(col(Event.seq)).limit(REPLAY_PAGE)).all()
        return [to_frame(e) for e in rows]


@router.websocket("/ws/events")
async def events(websocket: WebSocket, token: str = "", since: int = 0, elder_id: int | None = None) -> None:
    if not origin_allowed(websocket):
        await websocket.close(code=CLOSE_POLICY, reason="origin not allowed")
        return
    try:
        principal, elders = await asyncio.to_thread(_authenticate, token, elder_id)
    except DomainError as exc:
        await websocket.close(code=CLOSE_POLICY, reason=exc.detail)
        return
    if since < 0:
        await websocket.close(code=CLOSE_POLICY, reason="since must be >= 0")
        return
    hub: EventHub = websocket.app.state.hub
    client = Client(principal=principal, elder_ids=elders, only_elder=elder_id)
    await websocket.accept()
    hub.register(client)  # before the replay, so nothing committed meanwhile falls in between
    try:
        sender = asyncio.create_task(_send(websocket, client, since))
        client.hang_up = sender.cancel
        receiver = asyncio.create_task(_drain_incoming(websocket))
        done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, asyncio.CancelledError):
                task.result()
    finally:
        hub.unregister(client)
        closed_on_wire = client.wire is not None and not client.wire.open  # cut off there already
        if websocket.client_state == WebSocketState.CONNECTED and not closed_on_wire:
            with contextlib.suppress(Exception):
                code = CLOSE_TOO_SLOW if client.dropped else 1000
                await asyncio.wait_for(websocket.close(code=code), timeout=CLOSE_TIMEOUT)


async def _send(websocket: WebSocket, client: Client, since: int) -> None:
    cursor = since
    while True:
        page = await asyncio.to_thread(_replay_page, client, cursor)
        for stored in page:
            await websocket.send_text(stored.text)
            cursor = stored.seq
        if len(page) < REPLAY_PAGE:
            break
    wire = websocket.scope.get("extensions", {}).get(WIRE)
    if wire is not None:
        # What went on the queue while the replay ran, then straight to the wire from now on:
        # no await in between, so no frame can arrive out of order or fall in the gap.
        backlog: list[Frame] = []
        while not client.queue.empty():
            frame = client.queue.get_nowait()
            if frame is None or client.dropped:
                return
            if frame.seq > cursor:
                backlog.append(frame)
        client.go_direct(wire, cursor, backlog)
        while await client.queue.get() is not None:
            pass  # on the wire the queue only carries the hang-up
        return
    while True:
        frame = await client.queue.get()
        if frame is None or client.dropped:
            return
        if frame.seq <= cursor:
            continue  # already sent by the replay
        await websocket.send_text(frame.text)
        cursor = frame.seq


async def _drain_incoming(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
