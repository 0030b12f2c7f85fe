"""Auth request and response shapes."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from contracts.codes import Role
from server.auth.service import password_problem


class TokenRead(BaseModel):
    """An OAuth2 bearer token response."""

    access_token: str
    token_type: str = "bearer"
    expires_in_s: int
    role: Role


class Me(BaseModel):
    """Who the caller is."""

    name: str
    role: Role
    user_id: int | None
    technician_id: int | None


class UserCreate(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    password: str = Field(max_length=200, description="at least 12 characters, not a common password")
    role: Role
    full_name: str = Field(default="", max_length=120)
    authority_limit_cents: int = Field(default=0, ge=0, le=2**63 - 1)

    @field_validator("password")
    @classmethod
    def _password_policy(cls, value: str, info: ValidationInfo) -> str:
        """Refuse a short, common or username-bearing password, naming the rule."""
        problem = password_problem(value, username=str(info.data.get("username", "")))
        if problem is not None:
            raise PydanticCustomError("password_policy", problem)
        return value


class UserRead(BaseModel):
    """A user as the API shows it (never the hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    role: Role
    active: bool
    authority_limit_cents: int


class UserDisabled(UserRead):
    """A disabled user and what was taken away with it."""

    api_tokens_revoked: int
    sessions_ended: int
    couchdb_user: str  # removed, none, no technician, sync off, or failed: <reason> (disable again to retry)


class ApiTokenCreate(BaseModel):
    """A new machine token."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    role: Role = Role.STATION


class ApiTokenCreated(BaseModel):
    """The token in clear: shown once."""

    id: int
    name: str
    role: Role
    token: str


class ApiTokenRead(BaseModel):
    """A token as listed (prefix only)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    role: Role
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
