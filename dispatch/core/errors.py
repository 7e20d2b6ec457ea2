"""Domain errors. Services raise these, never HTTPException; one handler renders them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError

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
}
# Documented on every API route, so clients (and schemathesis) know every answer they may get.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _ERROR_TEXT.items()
}


_UNSTORABLE = {
    "detail": "a value cannot be stored (e.g. a NUL character, or a number out of range)",
    "error": "Unprocessable",
}


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
