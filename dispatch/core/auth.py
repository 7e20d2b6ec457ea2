"""Accounts, password hashing, bearer tokens and the role checks every router uses."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from sqlmodel import Field, Session, SQLModel, col, select

from dispatch.core.batching import GroupCommit
from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import new_session
from dispatch.core.errors import Forbidden, Unauthorized
from dispatch.core.types import UTCDateTime

log = logging.getLogger(__name__)

_HASHERS: dict[tuple[int, int], tuple[PasswordHasher, str]] = {}


def _hasher() -> tuple[PasswordHasher, str]:
    """The Argon2id hasher of the configured cost, and a dummy hash verified when a username
    does not exist, so that both cases take the same time."""
    settings = get_settings()
    key = (settings.password_hash_time_cost, settings.password_hash_memory_kib)
    if key not in _HASHERS:
        hasher = PasswordHasher(time_cost=key[0], memory_cost=key[1])
        _HASHERS[key] = (hasher, hasher.hash("not-a-real-password"))
    return _HASHERS[key]


TOKEN_ALGORITHM = "HS256"


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    OPERATOR = "operator"
    PROVIDER = "provider"
    FAMILY = "family"


STAFF_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.OPERATOR})
# Roles that may see elders' full phone numbers (everyone else gets them masked).
FULL_PHONE_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=16)
    display_name: str = Field(default="", max_length=64)
    phone: str | None = Field(default=None, max_length=20, index=True)
    provider_id: int | None = Field(default=None, foreign_key="provider.id", index=True)
    caregiver_id: int | None = Field(default=None, foreign_key="caregiver.id")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Principal:
    """Who is calling: what every scope check looks at."""

    id: int
    username: str
    role: Role
    provider_id: int | None = None
    caregiver_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def sees_full_phone(self) -> bool:
        return self.role in FULL_PHONE_ROLES

    @classmethod
    def of(cls, user: User) -> Principal:
        assert user.id is not None
        return cls(user.id, user.username, Role(user.role), user.provider_id, user.caregiver_id)


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    hasher, dummy = _hasher()
    try:
        return hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username)).first()
    ok = verify_password(user.password_hash if user else None, password)
    return user if ok and user is not None and user.active else None


def issue_token(user: User) -> str:
    settings = get_settings()
    now = utcnow()
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.token_ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=TOKEN_ALGORITHM)


def principal_from_token(session: Session, token: str) -> Principal:
    """Decode a bearer token and load its (still active) account."""
    found = principals_from_tokens(session, [token])[0]
    if isinstance(found, Unauthorized):
        raise found
    return found


def principals_from_tokens(session: Session, tokens: Sequence[str]) -> list[Principal | Unauthorized]:
    """Each token decoded and its (still active) account loaded, in one query for all: the
    caller, or why it is refused."""
    user_ids: list[int | Unauthorized] = []
    for token in tokens:
        try:
            claims = jwt.decode(
                token,
                get_settings().signing_key(),
                algorithms=[TOKEN_ALGORITHM],
                options={"require": ["exp", "sub"]},  # PyJWT accepts a token without exp otherwise
            )
            user_ids.append(int(claims["sub"]))
        except (jwt.PyJWTError, KeyError, ValueError):
            user_ids.append(Unauthorized("invalid or expired token", headers={"WWW-Authenticate": "Bearer"}))
    wanted = {u for u in user_ids if isinstance(u, int)}
    users = {u.id: u for u in session.exec(select(User).where(col(User.id).in_(wanted)))} if wanted else {}
    out: list[Principal | Unauthorized] = []
    for user_id in user_ids:
        if isinstance(user_id, Unauthorized):
            out.append(user_id)
            continue
        user = users.get(user_id)
        if user is None or not user.active:
            out.append(Unauthorized("account disabled or removed", headers={"WWW-Authenticate": "Bearer"}))
        else:
            out.append(Principal.of(user))
    return out


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


# Who a token belongs to, remembered briefly per process: a busy intake would otherwise read
# the account once per request. A disabled account is refused at most this much later.
PRINCIPAL_CACHE_SECONDS = 5.0
_PRINCIPAL_CACHE_MAX = 10_000
_principals: dict[str, tuple[float, Principal]] = {}


def _load_principals(tokens: list[str]) -> list[Principal | Unauthorized]:
    with new_session(write=False) as session:
        return principals_from_tokens(session, tokens)


class _PrincipalLoads(GroupCommit[str, Principal | Unauthorized]):
    """Callers not remembered are read together: those that arrive while a read runs go in the
    next one, one thread hop and one query for all (a provider's token is remembered only
    briefly, and under load its misses were 12 % of the API's CPU, one session each)."""

    max_batch = 512

    def _write(self, items: list[str]) -> list[Principal | Unauthorized | BaseException]:
        return list(_load_principals(items))


_loads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _PrincipalLoads] = weakref.WeakKeyDictionary()


async def _load(token: str) -> Principal:
    loads = await _loads_of_this_loop()
    found = await loads.submit(token)
    if isinstance(found, Unauthorized):
        raise found
    return found


async def _loads_of_this_loop() -> _PrincipalLoads:
    """One reader per event loop, started on first use; it ends with its loop."""
    loop = asyncio.get_running_loop()
    loads = _loads.get(loop)
    if loads is None:
        loads = _loads[loop] = _PrincipalLoads()
        await loads.start()
    return loads


async def current_principal(request: Request) -> Principal:
    """The caller, read in a short read-only session of its own rather than the request's.

    On SQLite a write request's session takes the write lock at its first statement. Were that
    statement here, the lock would be held while the endpoint waits for a thread of the pool,
    and with every thread waiting for that same lock the API stalls until the busy timeout
    (found by bench/load.py at 64 concurrent clients). So the request's session starts inside
    the endpoint, which runs to its commit without waiting for anything else."""
    principal = await principal_of_token(_bearer(request))
    request.state.principal = principal
    return principal


async def principal_of_token(token: str) -> Principal:
    """Whose token this is: remembered for PRINCIPAL_CACHE_SECONDS, else read (together with
    the other callers not remembered); Unauthorized if it is invalid, expired or disabled."""
    now = time.monotonic()
    cached = _principals.get(token)
    if cached is not None and cached[0] > now:
        return cached[1]
    principal = await _load(token)
    if len(_principals) >= _PRINCIPAL_CACHE_MAX:
        _principals.clear()
    # Never past the token's own expiry (checked again on the next load).
    expires = _token_expiry(token) - time.time() + now
    _principals[token] = (min(now + PRINCIPAL_CACHE_SECONDS, expires), principal)
    return principal


def _token_expiry(token: str) -> float:
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims.get("exp", 0))


def forget_principals() -> None:
    """Drop the remembered callers (an account was changed in this process, or between tests)."""
    _principals.clear()


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Any:
    """A dependency that lets only these roles through (403 for the others: what a role may do is
    no secret; which ids exist is, so out-of-scope ids answer 404 in the services)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(r.value for r in allowed))

    async def _check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"role {principal.role.value} may not do this (allowed: {names})")
        return principal

    return Depends(_check)


def mask_phone(phone: str | None) -> str | None:
    """138****0001: the display restriction of GB/T 35273, applied on the server."""
    if not phone:
        return phone
    digits = "".join(ch for ch in phone if ch.isdigit())
    national = digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
    if len(national) < 7:
        return "*" * len(national)
    return f"{national[:3]}****{national[-4:]}"


def visible_phone(principal: Principal, phone: str | None) -> str | None:
    return phone if principal.sees_full_phone else mask_phone(phone)


def mask_name(name: str) -> str:
    """张秀英 -> 张*英, 李明 -> 李*: enough to greet the elder, not to identify them."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
