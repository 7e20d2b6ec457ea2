"""Sign-in and account endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request

from dispatch.accounts import service as account_service
from dispatch.accounts.schemas import Token, UserCreate, UserRead
from dispatch.core import ratelimit
from dispatch.core.auth import (
    CurrentPrincipal,
    Principal,
    Role,
    User,
    authenticate,
    issue_token,
    require_roles,
)
from dispatch.core.db import SessionDep
from dispatch.core.errors import Unauthorized
from dispatch.core.validation import Offset

router = APIRouter(prefix="/api", tags=["accounts"])

Admin = Annotated[Principal, require_roles(Role.ADMIN)]


@router.post("/auth/token", response_model=Token)
def sign_in(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=128)],
) -> Token:
    """OAuth2 password flow: a bearer token for `Authorization: Bearer <token>`."""
    address = request.client.host if request.client else "unknown"
    ratelimit.check_login_allowed(username, address)
    user = authenticate(session, username=username, password=password)
    if user is None:
        ratelimit.record_login_failure(username, address)
        raise Unauthorized("wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    ratelimit.record_login_success(username)
    return Token(access_token=issue_token(user), role=Role(user.role))


@router.get("/me", response_model=UserRead)
def me(session: SessionDep, principal: CurrentPrincipal) -> UserRead:
    user = session.get(User, principal.id)
    assert user is not None
    return account_service.user_read(user)


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(user_in: UserCreate, session: SessionDep, _: Admin) -> UserRead:
    """Create an account (admin)."""
    return account_service.user_read(account_service.create_user(session=session, user_in=user_in))


@router.get("/users", response_model=list[UserRead])
def list_users(
    session: SessionDep,
    _: Admin,
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[UserRead]:
    return [
        account_service.user_read(u)
        for u in account_service.list_users(session=session, role=role, limit=limit, offset=offset)
    ]
