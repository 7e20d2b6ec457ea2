"""API shapes of accounts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dispatch.core.auth import Role
from dispatch.core.validation import MAX_INT, PhoneNumber


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: Role


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=128)
    role: Role
    display_name: str = Field(default="", max_length=64)
    phone: PhoneNumber | None = None
    provider_id: int | None = Field(default=None, ge=1, le=MAX_INT)
    caregiver_id: int | None = Field(default=None, ge=1, le=MAX_INT)

    @model_validator(mode="after")
    def _binding(self) -> UserCreate:
        if self.role == Role.PROVIDER and self.provider_id is None:
            raise ValueError("a provider account needs provider_id")
        if self.role != Role.PROVIDER and (self.provider_id is not None or self.caregiver_id is not None):
            raise ValueError("only provider accounts are bound to a provider or caregiver")
        return self


class UserRead(BaseModel):
    id: int
    username: str
    role: Role
    display_name: str
    phone: str | None
    provider_id: int | None
    caregiver_id: int | None
    active: bool
