"""Account services."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from dispatch.accounts.schemas import UserCreate, UserRead
from dispatch.core.auth import User, hash_password
from dispatch.core.errors import Conflict, NotFound
from services.models import Caregiver, Provider


def create_user(*, session: Session, user_in: UserCreate) -> User:
    if session.exec(select(User).where(User.username == user_in.username)).first() is not None:
        raise Conflict(f"username {user_in.username!r} is taken")
    if user_in.provider_id is not None and session.get(Provider, user_in.provider_id) is None:
        raise NotFound(f"provider {user_in.provider_id} not found")
    if user_in.caregiver_id is not None:
        caregiver = session.get(Caregiver, user_in.caregiver_id)
        if caregiver is None or caregiver.provider_id != user_in.provider_id:
            raise Conflict(
                f"caregiver {user_in.caregiver_id} does not work for provider {user_in.provider_id}"
            )
    user = User(
        username=user_in.username,
        password_hash=hash_password(user_in.password),
        role=user_in.role,
        display_name=user_in.display_name,
        phone=user_in.phone,
        provider_id=user_in.provider_id,
        caregiver_id=user_in.caregiver_id,
    )
    session.add(user)
    session.flush()
    return user


def list_users(
    *, session: Session, role: str | None = None, limit: int = 100, offset: int = 0
) -> Sequence[User]:
    stmt = select(User)
    if role:
        stmt = stmt.where(User.role == role)
    return session.exec(stmt.order_by(col(User.id)).offset(offset).limit(limit)).all()


def user_read(user: User) -> UserRead:
    return UserRead.model_validate(user, from_attributes=True)
