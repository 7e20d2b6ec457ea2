"""Domain errors. Services raise these, never HTTPException; one handler renders them."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)


class DomainError(Exception):
    status_code = 400

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class BadRequest(DomainError):
    status_code = 400


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    """Also what an out-of-scope id answers, so that ids cannot be probed."""

    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidTransition(Conflict):
    pass


class Unprocessable(DomainError):
    status_code = 422


class RateLimited(DomainError):
    status_code = 429


class ErrorBody(BaseModel):
    detail: Any = Field(description="What was wrong, for a person to read (a list of field errors for 422).")
    error: str | None = Field(default=None, description="The error's name, e.g. NotFound, Conflict.")


_ERROR_TEXT = {
    400: "Bad request",
    401: "Not signed in or token invalid",
    403: "This role may not do this",
    404: "Not found, or outside the caller's scope",
    409: "Conflicts with the current state",
    422: "Invalid input",
    429: "Too many attempts",
    503: "The database is busy or unreachable for now; retry after Retry-After seconds",
}
# Documented on every API route, so clients (and schemathesis) know every answer they may get.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _ERROR_TEXT.items()
}


_UNSTORABLE = {
    "detail": "a value cannot be stored (e.g. a NUL character, or a number out of range)",
    "error": "Unprocessable",
}


_UNAVAILABLE = {
    "detail": "the database is busy or unreachable right now; retry in a moment (the same Idempotency-Key creates a request once)",
    "error": "Unavailable",
}
RETRY_AFTER_SECONDS = 2
# PostgreSQL's SQLSTATEs of a database that is busy or away, not of a bad statement: a lock not
# granted in time, a deadlock or serialization failure, a server shutting down or starting.
_BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001", "57P01", "57P02", "57P03"})


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database is busy or unreachable (worth a retry), not that a
    statement was wrong: SQLite's write lock or busy timeout, PostgreSQL's lock timeout,
    deadlock, shutdown or a lost connection, or no pooled connection free in time."""
    if isinstance(exc, PoolTimeout):
        return True
    cause: BaseException | None = exc
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        cause = exc.orig
    if isinstance(cause, sqlite3.OperationalError):
        text = str(cause)
        return "database is locked" in text or "database is busy" in text
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _BUSY_SQLSTATES or sqlstate.startswith("08")
    # psycopg's OperationalError without a SQLSTATE: the server could not be reached at all.
    return type(cause).__name__ == "OperationalError" and type(cause).__module__.startswith("psycopg")


def render_error(exc: BaseException) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
    """How a domain error (or a value the database refused) is answered: status, JSON body and
    headers, the same bytes JSONResponse would send; None for anything else (a server error).
    The app's handlers below and the hot paths (core/hotpaths.py) both answer with this."""
    if isinstance(exc, DomainError):
        status, content = exc.status_code, {"detail": exc.detail, "error": type(exc).__name__}
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]
    elif isinstance(exc, DataError):
        # The database refused a value the schemas let through (a NUL character, which
        # PostgreSQL text cannot hold; a number out of a column's range): bad input, not a
        # server error. The transaction is rolled back by the session's owner.
        log.info("refused by the database: %s", type(exc.orig).__name__)
        status, content, headers = 422, _UNSTORABLE, []
    elif database_unavailable(exc):
        # Rolled back by the session's owner; the caller may try again. Logged without the
        # statement's parameters (they may hold an elder's phone number or care notes).
        log.warning("database busy or unreachable: %s", type(getattr(exc, "orig", exc) or exc).__name__)
        status, content = 503, _UNAVAILABLE
        headers = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
    else:
        return None
    body = JSONResponse(content).body
    return status, bytes(body), [(b"content-type", b"application/json"), *headers]


def _answer(exc: BaseException) -> Response:
    rendered = render_error(exc)
    assert rendered is not None
    status, body, headers = rendered
    response = Response(body, status_code=status, media_type="application/json")
    for key, value in headers[1:]:
        response.headers.append(key.decode("latin-1"), value.decode("latin-1"))
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> Response:
        return _answer(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_input(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer, minus the echo of what was sent ("input"): a refused body may
        # carry a phone number or care notes, and error bodies end up in logs and proxies.
        errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(DataError)
    async def _unstorable(_request: Request, exc: DataError) -> Response:
        return _answer(exc)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(sqlite3.OperationalError)
    async def _busy(_request: Request, exc: Exception) -> Response:
        if not database_unavailable(exc):
            raise exc  # a real fault: the server error it is
        return _answer(exc)
