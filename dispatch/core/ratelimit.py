"""Login throttling: after repeated failures per account and per address, answer 429."""

from __future__ import annotations

import contextlib
import logging

import redis

from dispatch.core.errors import RateLimited
from dispatch.core.redis import get_redis

log = logging.getLogger(__name__)

MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60
_KEY = "eldercare:login-fail:{}:{}"


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    return [
        (_KEY.format("user", username.lower()), MAX_FAILURES_PER_ACCOUNT),
        (_KEY.format("addr", address), MAX_FAILURES_PER_ADDRESS),
    ]


def check_login_allowed(username: str, address: str) -> None:
    try:
        conn = get_redis()
        counts = conn.mget([k for k, _ in _keys(username, address)])
    except redis.RedisError:
        log.warning("login throttle unavailable (Redis down); allowing the attempt")
        return
    for (key, limit), count in zip(_keys(username, address), counts, strict=True):
        if count is not None and int(count) >= limit:
            retry_after = max(1, int(get_redis().ttl(key)))
            raise RateLimited(
                f"too many failed sign-ins; try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )


def record_login_failure(username: str, address: str) -> None:
    try:
        with get_redis().pipeline() as pipe:
            for key, _ in _keys(username, address):
                # The window starts at the first failure. (Not EXPIRE ... NX: that needs Redis 7,
                # and the embedded server is 6.2 — every failure went unrecorded there.)
                pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True)
                pipe.incr(key)
            pipe.execute()
    except redis.RedisError:
        log.warning("could not record a failed sign-in (Redis down)")


def record_login_success(username: str) -> None:
    with contextlib.suppress(redis.RedisError):
        get_redis().delete(_KEY.format("user", username.lower()))
