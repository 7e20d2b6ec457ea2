"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from dispatch.core.db import get_engine
from dispatch.core.redis import get_redis

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz() -> JSONResponse:
    """200 only when the database and Redis answer; else 503 naming the one that failed."""
    failed: dict[str, str] = {}
    try:
        with get_engine(write=False).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        failed["database"] = type(exc).__name__
    try:
        get_redis().ping()
    except Exception as exc:
        failed["redis"] = type(exc).__name__
    if failed:
        return JSONResponse({"status": "unavailable", "failed": failed}, status_code=503)
    return JSONResponse({"status": "ready"})
