"""S4: password guessing is cut off — 429 after 5 failures per account (from any address) and
after 20 per address (over any accounts) — and the lock tells a guesser nothing: the right
password is refused as well while it holds, unknown accounts count like real ones, and the
answer says when to come back (`Retry-After`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from dispatch.core import ratelimit
from dispatch.core.auth import Role
from dispatch.core.redis import get_redis
from tests.helpers import make_user


@pytest.fixture
def from_addresses() -> Iterator[dict[str, TestClient]]:
    """One running app, reached from several client addresses."""
    from dispatch.app import create_app

    app = create_app()
    clients: dict[str, TestClient] = {}
    with TestClient(app, client=("203.0.113.1", 40000)) as first:
        clients["203.0.113.1"] = first
        for address in ("203.0.113.2", "198.51.100.7"):
            clients[address] = TestClient(app, client=(address, 40000))
        yield clients


def _sign_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/api/auth/token", data={"username": username, "password": password})


def test_per_account_limit_holds_from_every_address(from_addresses: dict[str, TestClient]) -> None:
    user = make_user(Role.OPERATOR, password="the-right-password")
    a, b, c = from_addresses.values()
    answers = [
        _sign_in((a, b)[i % 2], user, f"guess-{i}").status_code
        for i in range(ratelimit.MAX_FAILURES_PER_ACCOUNT)
    ]
    assert answers == [401] * ratelimit.MAX_FAILURES_PER_ACCOUNT
    for client in (a, b, c):  # a third address is locked out of this account too
        locked = _sign_in(client, user, "the-right-password")  # even the right password
        assert locked.status_code == 429, locked.text
        assert int(locked.headers["Retry-After"]) > 0 and "too many" in locked.json()["detail"]
    # Other accounts are not affected from a clean address.
    other = make_user(Role.OPERATOR, password="the-right-password")
    assert _sign_in(c, other, "the-right-password").status_code == 200
    # The lock is in Redis with the window as its lifetime; when it lapses, sign-in works again.
    key = f"eldercare:login-fail:user:{user.lower()}"
    assert 0 < get_redis().ttl(key) <= ratelimit.WINDOW_SECONDS
    get_redis().delete(key)
    assert _sign_in(c, user, "the-right-password").status_code == 200


def test_per_address_limit_over_many_accounts(from_addresses: dict[str, TestClient]) -> None:
    attacker, _, bystander = from_addresses.values()
    users = [make_user(Role.FAMILY, password="the-right-password") for _ in range(5)]
    tried = 0
    for i in range(ratelimit.MAX_FAILURES_PER_ADDRESS):
        # Spread over accounts, never reaching any one account's limit; unknown names count too.
        name = users[i % len(users)] if i % 3 else f"nobody-{i}"
        assert _sign_in(attacker, name, f"guess-{i}").status_code == 401
        tried += 1
    assert tried == ratelimit.MAX_FAILURES_PER_ADDRESS
    refused = _sign_in(attacker, users[0], "the-right-password")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert _sign_in(attacker, "someone-new", "x").status_code == 429
    # The same accounts from another address: each is below its own limit, so they sign in.
    assert all(_sign_in(bystander, u, "the-right-password").status_code == 200 for u in users)


def test_success_clears_the_account_count_but_not_the_address_count(
    from_addresses: dict[str, TestClient],
) -> None:
    client = next(iter(from_addresses.values()))
    user = make_user(Role.MANAGER, password="the-right-password")
    for round_ in range(3):  # 4 failures then a success, three times: never locked
        for i in range(ratelimit.MAX_FAILURES_PER_ACCOUNT - 1):
            assert _sign_in(client, user, f"typo-{round_}-{i}").status_code == 401
        assert _sign_in(client, user, "the-right-password").status_code == 200
    # 12 failures from this address so far; 8 more (limit 20) lock the address.
    for i in range(ratelimit.MAX_FAILURES_PER_ADDRESS - 3 * (ratelimit.MAX_FAILURES_PER_ACCOUNT - 1)):
        _sign_in(client, f"nobody-{i}", "x")
    assert _sign_in(client, user, "the-right-password").status_code == 429
