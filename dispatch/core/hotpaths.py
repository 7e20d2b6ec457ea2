"""The short way in for the few routes that carry the platform's load.

`POST /api/requests` and `POST /api/offers/{id}/accept` are most of what the API serves under
load, and FastAPI's per-request machinery (eight middleware layers, matching ~150 routes,
solving dependencies, validating the answer against its response model again) cost more CPU
than the work itself (bench/load.py, py-spy). A hot route is served here when the request is
well-formed: a bearer token of an allowed role, a JSON body that validates. Everything else —
no token, a wrong role, a body that does not parse or validate, an odd content type — is
handed to FastAPI with its body replayed, so every refusal is FastAPI's own answer, byte for
byte. The endpoint's work itself is one function shared by both ways in (see orders/api.py),
and errors it raises are rendered by the same function as the app's error handlers.
`tests/dispatch/test_hotpaths.py` sends the same requests both ways and compares the answers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.types import Message, Receive, Scope, Send

from dispatch.core.auth import Principal, Role, principal_of_token
from dispatch.core.errors import DomainError, Unauthorized, render_error
from dispatch.core.middleware import SECURITY_HEADERS

log = logging.getLogger(__name__)

_JSON = b"application/json"
_BASE_HEADERS = [
    (b"content-type", _JSON),
    *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()),
]
_PLAIN_500 = b"Internal Server Error"


class NotHot(Exception):
    """Hand this request to FastAPI: it is not the well-formed case this way serves."""


@dataclass(frozen=True)
class HotCall:
    """What a hot handler gets: the app (for its state), the caller, the path's ids, the body."""

    app: FastAPI
    principal: Principal
    ids: dict[str, int]
    body: bytes
    headers: Sequence[tuple[bytes, bytes]]
    client: str

    def header(self, name: bytes) -> str | None:
        """The first value of a header (as Starlette's `headers.get`), decoded as latin-1."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def json(self) -> Any:
        """The body as JSON, where FastAPI would parse it so; NotHot otherwise."""
        if not self.body or not _json_content_type(self.header(b"content-type")):
            raise NotHot
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise NotHot from None


HotHandler = Callable[[HotCall], Awaitable[tuple[int, BaseModel]]]


@dataclass(frozen=True)
class HotRoute:
    method: str
    path: str  # e.g. "/api/offers/{offer_id}/accept": `{name}` is a positive 31-bit id
    roles: frozenset[Role]
    handle: HotHandler

    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[1-9][0-9]{0,9})", self.path) + "$")


MAX_ID = 2**31 - 1


def _json_content_type(value: str | None) -> bool:
    """Only the plain case; FastAPI handles `+json` types and parameters its own way."""
    return value is not None and value.split(";")[0].strip().lower() == "application/json"


class HotPaths:
    """Serves the hot routes of `app`; `fallback` is the app's ordinary ASGI entry."""

    def __init__(self, app: FastAPI, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes = [(r, r.pattern()) for r in routes]
        # How many requests each way took (for tests, and to see that the short way is used).
        self.served = 0
        self.handed_over = 0

    def match(self, scope: Scope) -> tuple[HotRoute, dict[str, int]] | None:
        method, path = scope["method"], scope["path"]
        for route, pattern in self.routes:
            if route.method != method:
                continue
            found = pattern.match(path)
            if found is None:
                continue
            ids = {k: int(v) for k, v in found.groupdict().items()}
            if any(v > MAX_ID for v in ids.values()):
                return None
            return route, ids
        return None

    async def serve(
        self,
        route: HotRoute,
        ids: dict[str, int],
        scope: Scope,
        receive: Receive,
        send: Send,
        fallback: Callable[[Scope, Receive, Send], Awaitable[None]],
    ) -> None:
        body, rest = await _read_body(receive)
        try:
            principal = await self._caller(route, scope["headers"])
            client = scope.get("client")
            call = HotCall(self.app, principal, ids, body, scope["headers"], client[0] if client else "")
            status, answer = await route.handle(call)
        except NotHot:
            self.handed_over += 1
            await fallback(scope, _replay(body, rest, receive), send)
            return
        except Exception as exc:
            self.served += 1
            rendered = render_error(exc)
            if rendered is None:
                log.exception("hot path %s %s failed", route.method, route.path)
                await _send(send, 500, _PLAIN_500, [(b"content-type", b"text/plain; charset=utf-8")])
                return
            status, content, headers = rendered
            await _send(send, status, content, _with_security(headers))
            return
        self.served += 1
        await _send(send, status, answer.model_dump_json().encode(), _BASE_HEADERS)

    @staticmethod
    async def _caller(route: HotRoute, headers: Sequence[tuple[bytes, bytes]]) -> Principal:
        token = _bearer(headers)
        if token is None:
            raise NotHot
        try:
            principal = await principal_of_token(token)
        except (Unauthorized, DomainError):
            raise NotHot from None
        if principal.role not in route.roles:
            raise NotHot
        return principal


def _bearer(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and any message other than body that arrived (a disconnect)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replay(body: bytes, rest: list[Message], original: Receive) -> Receive:
    """A receive that gives the body already read once, then what the connection gives."""
    queued: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *rest]

    async def receive() -> Message:
        if queued:
            return queued.pop(0)
        return await original()

    return receive


def _with_security(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {k for k, _ in headers}
    return headers + [(k, v) for k, v in _BASE_HEADERS if k not in names and k != b"content-type"]


async def _send(send: Send, status: int, content: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(content)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": content})


class HotPathsApp(FastAPI):
    """FastAPI, with the short way in for the routes given to `serve_hot`."""

    hot: HotPaths | None = None

    def serve_hot(self, routes: Sequence[HotRoute]) -> None:
        self.hot = HotPaths(self, routes) if routes else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hot is not None and scope["type"] == "http":
            found = self.hot.match(scope)
            if found is not None:
                await self.hot.serve(*found, scope, receive, send, super().__call__)
                return
        await super().__call__(scope, receive, send)
