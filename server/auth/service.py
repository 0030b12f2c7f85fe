"""Passwords, sign-in tokens (JWT) and API tokens."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.audit.service import record
from server.auth.models import ApiToken, User
from server.auth.throttle import SignInThrottle, ThrottleLimits
from server.db import utcnow

if TYPE_CHECKING:
    from server.config import Settings

# scrypt work factors (RFC 7914): n=2**14, r=8, p=1 uses 16 MiB and ~50 ms per check here.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
API_TOKEN_PREFIX = "cs_"


def hash_password(password: str) -> str:
    """Hash a password with scrypt and a random salt; the parameters travel in the string."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches the stored scrypt hash."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected) or 64
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


def needs_rehash(stored: str) -> bool:
    """True when a stored hash was made with other work factors than today's (re-hashed at sign-in)."""
    return not stored.startswith(f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$")


@functools.cache
def dummy_hash() -> str:
    """A real hash of a random password, with today's parameters: checked when the username is unknown,
    so a failure costs the same scrypt run whether or not the user exists."""
    return hash_password(secrets.token_urlsafe(16))


# New passwords: at least this long, and not on the shipped list of common and breached ones.
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 200
_COMMON_PASSWORDS_FILE = Path(__file__).with_name("data") / "common_passwords.txt"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list (server/auth/data/common_passwords.txt), lower-cased."""
    lines = _COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str, *, username: str = "") -> str | None:
    """Why a new password is refused (a sentence), or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"the password must have at least {MIN_PASSWORD_CHARS} characters (it has {len(password)})"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the password may have at most {MAX_PASSWORD_CHARS} characters"
    if password.strip().lower() in common_passwords():
        return "the password is on the list of common or breached passwords; choose another"
    if username and username.strip().lower() in password.lower():
        return "the password must not contain the username"
    return None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in person or an API token."""

    name: str
    role: Role
    user_id: int | None = None
    token_id: int | None = None
    technician_id: int | None = None  # set for CSFRs: the only technician whose work they see


def create_access_token(*, user: User, secret: str, minutes: int) -> str:
    """A signed JWT for a user, valid for `minutes`."""
    now = utcnow()
    claims = {
        "sub": str(user.id),
        "gen": user.token_generation,
        "name": user.username,
        "role": user.role,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=minutes)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_access_token(token: str, secret: str) -> dict[str, object]:
    """The claims of a valid token; raises jwt.InvalidTokenError otherwise."""
    return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})


def authenticate(*, db_session: Session, username: str, password: str) -> User | None:
    """The active user with that username and password, or None (re-hashes an outdated hash; not committed)."""
    user = db_session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        # Spend the same time as a real check so usernames cannot be probed by timing.
        verify_password(password, dummy_hash())
        return None
    if not verify_password(password, user.password_hash):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db_session.flush()
    return user


class SignInThrottled(Exception):
    """Too many failed sign-ins for this username or from this address; `retry_after_s` says when."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many failed sign-ins for this username or from this address; try again in {retry_after_s} s"
        )
        self.message = str(self)
        self.retry_after_s = retry_after_s


def sign_in(
    *,
    db_session: Session,
    username: str,
    password: str,
    address: str,
    throttle: SignInThrottle,
    limits: ThrottleLimits,
) -> User | None:
    """`authenticate` behind the throttle (API and office pages alike); raises SignInThrottled."""
    wait = throttle.retry_after_s(username=username, address=address, limits=limits)
    if wait:
        raise SignInThrottled(wait)
    user = authenticate(db_session=db_session, username=username, password=password)
    if user is None:
        throttle.failed(username=username, address=address)
    else:
        throttle.succeeded(username=username)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(*, db_session: Session, name: str, role: Role, user_id: int | None = None) -> str:
    """Create an API token and return it in clear; only its hash is stored."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    db_session.add(
        ApiToken(
            name=name, prefix=token[:10], token_hash=_token_hash(token), role=role.value, user_id=user_id
        )
    )
    db_session.flush()
    return token


def lookup_api_token(*, db_session: Session, token: str) -> ApiToken | None:
    """The live token row for a presented token, or None (unknown, revoked, or its user disabled)."""
    row = db_session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    if row.user_id is not None:
        owner = db_session.get(User, row.user_id)
        if owner is None or not owner.active:
            return None
    return row


def disable_user(*, db_session: Session, user: User) -> dict[str, int]:
    """Take a user's access away at once: sign-in tokens, API tokens and browser sessions (not committed).

    The CouchDB user of a CSFR's tablet is removed by the caller after the commit
    (server.sync.service.deprovision), since CouchDB is not part of this transaction.
    """
    from server.web.service import end_user_sessions  # server.web imports this module

    user.active = False
    user.token_generation += 1  # every sign-in token issued so far stops matching
    now = utcnow()
    tokens = list(
        db_session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)))
    )
    for row in tokens:
        row.revoked_at = now
    sessions = end_user_sessions(db_session=db_session, user_id=user.id)
    db_session.flush()
    return {"api_tokens_revoked": len(tokens), "sessions_ended": sessions}


def revoke_access(*, db_session: Session, user: User, actor: str, settings: Settings) -> dict[str, Any]:
    """Disable `user` and commit, then remove their tablet's CouchDB user; the audit trail records it.

    The one path for taking access away (API, CLI, deactivating a technician). Idempotent: disabling
    again retries a CouchDB removal that failed.
    """
    # server.sync imports the models of every feature; importing it here at the top would be circular.
    from server.sync.runner import admin_from
    from server.sync.service import deprovision_user

    taken = disable_user(db_session=db_session, user=user)
    record(
        db_session=db_session,
        actor=actor,
        action="disabled",
        entity_type="user",
        entity_id=user.id,
        detail={"username": user.username, **{k: str(v) for k, v in taken.items()}},
    )
    db_session.commit()
    admin = admin_from(settings)
    try:
        couch = deprovision_user(db_session=db_session, admin=admin, user_id=user.id)
    finally:
        if admin is not None:
            admin.close()
    return {**taken, "couchdb_user": couch}


def enable_user(*, db_session: Session, user: User) -> None:
    """Let a disabled user sign in again; what was revoked stays revoked (not committed)."""
    user.active = True
    db_session.flush()


def create_user(
    *,
    db_session: Session,
    username: str,
    password: str,
    role: Role,
    full_name: str = "",
    authority_limit_cents: int = 0,
) -> User:
    """Add a user with a hashed password."""
    user = User(
        username=username,
        full_name=full_name,
        role=role.value,
        password_hash=hash_password(password),
        authority_limit_cents=authority_limit_cents,
    )
    db_session.add(user)
    db_session.flush()
    return user
