"""Dependencies every route uses: the database session, the caller, and role checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.auth.models import User
from server.auth.service import API_TOKEN_PREFIX, Principal, decode_access_token, lookup_api_token
from server.auth.throttle import SignInThrottle, ThrottleLimits
from server.config import Settings, get_settings
from server.db import get_db, utcnow
from server.errors import ApiError, not_found
from server.technicians.models import Technician

DbSession = Annotated[Session, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]


def get_signin_throttle(request: Request, settings: AppSettings) -> tuple[SignInThrottle, ThrottleLimits]:
    """This process's sign-in throttle (one per app, see server.main) and the configured limits."""
    limits = ThrottleLimits(
        window_s=settings.signin_window_s,
        per_user=settings.signin_failures_per_user,
        per_address=settings.signin_failures_per_address,
    )
    return request.app.state.signin_throttle, limits


SignInGuard = Annotated[tuple[SignInThrottle, ThrottleLimits], Depends(get_signin_throttle)]


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy: run uvicorn with --proxy-headers)."""
    return request.client.host if request.client else "unknown"


# auto_error=False: we raise our own JSON 401 naming what is missing.
_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


# Database ids are at most this (PostgreSQL integer); a larger one names nobody.
MAX_ID = 2**31 - 1


def _user_of(db_session: Session, claims: dict[str, object]) -> User | None:
    """The user a token's `sub` names; None when it is not a database id (a forged or foreign token)."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.isascii() or not sub.isdigit() or not 0 < int(sub) <= MAX_ID:
        return None
    return db_session.get(User, int(sub))


def get_principal(
    request: Request,
    db_session: DbSession,
    settings: AppSettings,
    token: Annotated[str | None, Depends(_bearer)],
) -> Principal:
    """Resolve the bearer token (a sign-in JWT or an API token) to a Principal, or 401."""
    if not token:
        raise _unauthorized("sign in first: send 'Authorization: Bearer <token>'")
    if token.startswith(API_TOKEN_PREFIX):
        row = lookup_api_token(db_session=db_session, token=token)
        if row is None:
            raise _unauthorized("the API token is unknown or revoked")
        row.last_used_at = utcnow()
        db_session.commit()
        principal = Principal(
            name=f"token:{row.name}", role=Role(row.role), token_id=row.id, user_id=row.user_id
        )
    else:
        try:
            claims = decode_access_token(token, settings.resolved_secret_key())
        except jwt.ExpiredSignatureError:
            raise _unauthorized("your sign-in has expired; sign in again") from None
        except jwt.InvalidTokenError:
            raise _unauthorized("the sign-in token is not valid") from None
        user = _user_of(db_session, claims)
        if user is None or not user.active:
            raise _unauthorized("this user no longer exists or is disabled")
        if claims.get("gen", 0) != user.token_generation:
            raise _unauthorized("this sign-in was revoked when the user was disabled; sign in again")
        principal = Principal(name=user.username, role=Role(user.role), user_id=user.id)
    if principal.role is Role.CSFR and principal.user_id is not None:
        tech_id = db_session.scalar(select(Technician.id).where(Technician.user_id == principal.user_id))
        principal = Principal(
            name=principal.name,
            role=principal.role,
            user_id=principal.user_id,
            token_id=principal.token_id,
            technician_id=tech_id,
        )
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]

# The largest integer a BigInteger column holds; ids are checked against MAX_ID (integer columns).
MAX_INT = 2**63 - 1


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


def _bad_field(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "invalid_request",
        f"the request is not valid: {field}: {message}",
        fields=[{"field": field, "message": message}],
    )


def _check_value(field: str, value: object, *, id_field: bool) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise _bad_field(field, "text may not contain a NUL character")
    if isinstance(value, int) and not isinstance(value, bool):
        if id_field and not -MAX_ID - 1 <= value <= MAX_ID:
            raise _bad_field(field, f"an id is at most {MAX_ID}")
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise _bad_field(field, f"a number is at most {MAX_INT}")


def _walk(path: list[str], value: object) -> None:
    """Check every string and number of a decoded JSON body, naming the field at fault."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_value(".".join([*path, str(key)]) or "body", key, id_field=False)
            _walk([*path, str(key)], item)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _walk([*path, str(n)], item)
    else:
        name = path[-1] if path else ""
        key = next((p for p in reversed(path) if not p.isdigit()), "")
        _check_value(".".join(path) or "body", value, id_field=_is_id(key) or _is_id(name))


async def check_request_input(request: Request) -> None:
    """App-wide validation hook: a NUL character in any text (path, query, JSON or form) is a 422 naming
    the field; an id in the path beyond the database's range is a 404, in the query or body a 422."""
    for name, raw in request.path_params.items():
        text = str(raw)
        if "\x00" in text:
            raise _bad_field(name, "text may not contain a NUL character")
        if _is_id(name) and text.lstrip("-").isdigit() and not -MAX_ID - 1 <= int(text) <= MAX_ID:
            raise not_found(name.removesuffix("_id").replace("_", " ") or "record", text)
    for name, text in request.query_params.multi_items():
        if "\x00" in text or "\x00" in name:
            raise _bad_field(f"query.{name}", "text may not contain a NUL character")
        if _is_id(name) and text.lstrip("-").isdigit() and not -MAX_ID - 1 <= int(text) <= MAX_ID:
            raise _bad_field(f"query.{name}", f"an id is at most {MAX_ID}")
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        body = await request.body()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return  # FastAPI answers malformed JSON with its own 422
        _walk([], data)
    elif content_type == "application/x-www-form-urlencoded":
        form = await request.form()  # the same parsed form the route reads (cached on the request)
        for name, value in form.multi_items():
            if "\x00" in str(value) or "\x00" in name:
                raise _bad_field(name, "text may not contain a NUL character")


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only callers with one of `roles` (403 names who may)."""
    allowed = frozenset(roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            who = ", ".join(sorted(r.value for r in allowed))
            raise ApiError(
                403, "forbidden", f"a {principal.role.value} may not do this; it needs one of: {who}"
            )
        return principal

    return check


# The role sets the API uses, named once.
STAFF = (Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN)
OFFICE = (Role.DISPATCHER, Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN)
ANYONE_SIGNED_IN = (*OFFICE, Role.CSFR)

Staff = Annotated[Principal, Depends(require(*STAFF))]
Office = Annotated[Principal, Depends(require(*OFFICE))]
OfficeOrCsfr = Annotated[Principal, Depends(require(*ANYONE_SIGNED_IN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Station = Annotated[Principal, Depends(require(Role.STATION, Role.ADMIN))]
