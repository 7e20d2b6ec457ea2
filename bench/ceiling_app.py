"""The benchmark's ceiling: a bare FastAPI route that validates the body and only pushes it to
Redis. Same machine, same server settings, same load generator as the platform's intake, so
the platform's figures can be read as a share of what this box can do at all.

    uvicorn bench.ceiling_app:app   (REDIS_URL must point at a running Redis)
"""

from __future__ import annotations

import os
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
_redis = aioredis.Redis.from_url(os.environ["REDIS_URL"])


class Body(BaseModel):
    elder_id: int
    kind: str
    details: dict[str, Any] = {}
    priority: str = "normal"
    note: str = ""


@app.post("/api/requests", status_code=202)
async def intake(body: Body) -> dict[str, Any]:
    await _redis.lpush("bench:ceiling", body.model_dump_json())
    return {"status": "queued"}
