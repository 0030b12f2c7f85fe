"""Sign-in, the caller's identity, users and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from contracts.codes import Role
from server.audit.service import record
from server.auth import service
from server.auth.models import ApiToken, User
from server.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenRead,
    Me,
    TokenRead,
    UserCreate,
    UserDisabled,
    UserRead,
)
from server.db import utcnow
from server.deps import (
    MAX_ID,
    Admin,
    AppSettings,
    CurrentPrincipal,
    DbSession,
    SignInGuard,
    client_address,
)
from server.errors import ApiError, conflict, not_found

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/token", response_model=TokenRead, summary="Sign in (OAuth2 password flow). Anyone.")
def sign_in(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db_session: DbSession,
    settings: AppSettings,
    guard: SignInGuard,
) -> TokenRead:
    throttle, limits = guard
    try:
        user = service.sign_in(
            db_session=db_session,
            username=form.username,
            password=form.password,
            address=client_address(request),
            throttle=throttle,
            limits=limits,
        )
    except service.SignInThrottled as exc:
        raise ApiError(
            429, "too_many_attempts", exc.message, headers={"Retry-After": str(exc.retry_after_s)}
        ) from None
    if user is None:
        raise ApiError(
            401, "bad_credentials", "wrong username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    db_session.commit()  # a re-hashed password
    token = service.create_access_token(
        user=user, secret=settings.resolved_secret_key(), minutes=settings.access_token_minutes
    )
    return TokenRead(
        access_token=token, expires_in_s=settings.access_token_minutes * 60, role=Role(user.role)
    )


@router.get("/auth/me", response_model=Me, summary="Who am I. Any signed-in caller.")
def me(principal: CurrentPrincipal) -> Me:
    return Me(
        name=principal.name,
        role=principal.role,
        user_id=principal.user_id,
        technician_id=principal.technician_id,
    )


@router.get("/users", response_model=list[UserRead], summary="List users. Admin.")
def list_users(_: Admin, db_session: DbSession) -> list[User]:
    return list(db_session.scalars(select(User).order_by(User.username)))


@router.post("/users", response_model=UserRead, status_code=201, summary="Create a user. Admin.")
def create_user(body: UserCreate, principal: Admin, db_session: DbSession) -> User:
    if db_session.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise conflict(f"username {body.username!r} is taken")
    user = service.create_user(
        db_session=db_session,
        username=body.username,
        password=body.password,
        role=body.role,
        full_name=body.full_name,
        authority_limit_cents=body.authority_limit_cents,
    )
    record(
        db_session=db_session,
        actor=principal.name,
        action="created",
        entity_type="user",
        entity_id=user.id,
        detail={"username": user.username, "role": user.role},
    )
    db_session.commit()
    return user


def valid_user(user_id: int, db_session: DbSession) -> User:
    """Path dependency: the user, else 404."""
    user = db_session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise not_found("user", user_id)
    return user


@router.post(
    "/users/{user_id}/disable",
    response_model=UserDisabled,
    summary="Disable a user: their sign-in tokens, API tokens, browser sessions and tablet sync stop at once. Admin.",
)
def disable_user(
    user: Annotated[User, Depends(valid_user)], principal: Admin, db_session: DbSession, settings: AppSettings
) -> UserDisabled:
    if user.id == principal.user_id:
        raise conflict("you cannot disable yourself; ask another admin", code="self_disable")
    taken = service.revoke_access(db_session=db_session, user=user, actor=principal.name, settings=settings)
    return UserDisabled(**UserRead.model_validate(user).model_dump(), **taken)


@router.post(
    "/users/{user_id}/enable",
    response_model=UserRead,
    summary="Enable a disabled user (they sign in again; revoked tokens stay revoked). Admin.",
)
def enable_user(user: Annotated[User, Depends(valid_user)], principal: Admin, db_session: DbSession) -> User:
    service.enable_user(db_session=db_session, user=user)
    record(
        db_session=db_session,
        actor=principal.name,
        action="enabled",
        entity_type="user",
        entity_id=user.id,
        detail={"username": user.username},
    )
    db_session.commit()
    return user


@router.post(
    "/tokens", response_model=ApiTokenCreated, status_code=201, summary="Create an API token. Admin."
)
def create_token(body: ApiTokenCreate, principal: Admin, db_session: DbSession) -> ApiTokenCreated:
    token = service.create_api_token(db_session=db_session, name=body.name, role=body.role)
    row = db_session.scalar(select(ApiToken).where(ApiToken.prefix == token[:10], ApiToken.name == body.name))
    assert row is not None
    record(
        db_session=db_session,
        actor=principal.name,
        action="created",
        entity_type="api_token",
        entity_id=row.id,
        detail={"name": body.name, "role": body.role.value},
    )
    db_session.commit()
    return ApiTokenCreated(id=row.id, name=row.name, role=body.role, token=token)


@router.get("/tokens", response_model=list[ApiTokenRead], summary="List API tokens (prefixes only). Admin.")
def list_tokens(_: Admin, db_session: DbSession) -> list[ApiToken]:
    return list(db_session.scalars(select(ApiToken).order_by(ApiToken.id)))


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke an API token. Admin.")
def revoke_token(token_id: int, principal: Admin, db_session: DbSession) -> None:
    row = db_session.get(ApiToken, token_id)
    if row is None:
        raise not_found("API token", token_id)
    row.revoked_at = row.revoked_at or utcnow()
    record(
        db_session=db_session,
        actor=principal.name,
        action="revoked",
        entity_type="api_token",
        entity_id=row.id,
        detail={},
    )
    db_session.commit()
