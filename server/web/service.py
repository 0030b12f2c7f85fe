"""Browser sessions and CSRF tokens for the office pages (the same users, roles and passwords as the API).

The session cookie carries a random token; the database keeps only its SHA-256, so a stolen database
does not sign anyone in, and signing out revokes the row. The CSRF token is a synchronizer token derived
from the session token with HMAC (`csrf_token`): forms carry it in a hidden field, htmx sends it in the
`X-CSRF-Token` header, and `csrf_ok` compares it in constant time. Before sign-in there is no session, so
the sign-in form uses a double-submit cookie instead (`login_csrf`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.auth.models import User
from server.auth.service import Principal
from server.db import utcnow
from server.web.models import WebSession

SESSION_COOKIE = "curbstop_session"
LOGIN_CSRF_COOKIE = "curbstop_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# Writing last_seen_at on every page view would make each read a write; once in this long is enough.
_TOUCH_EVERY = dt.timedelta(minutes=5)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(*, db_session: Session, user: User, lifetime_minutes: int, user_agent: str = "") -> str:
    """Open a session for `user` and return the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db_session.add(
        WebSession(
            token_hash=_hash(token),
            user_id=user.id,
            user_agent=user_agent[:200],
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(minutes=lifetime_minutes),
        )
    )
    db_session.flush()
    return token


def principal_of(*, db_session: Session, token: str) -> Principal | None:
    """The signed-in person of a live session token, or None (unknown, expired, signed out, user disabled)."""
    row = db_session.scalar(select(WebSession).where(WebSession.token_hash == _hash(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = db_session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
        db_session.commit()
    return Principal(name=user.username, role=Role(user.role), user_id=user.id)


def end_session(*, db_session: Session, token: str) -> bool:
    """Sign a session out (the cookie's token stops working at once); False when it was not live."""
    row = db_session.scalar(select(WebSession).where(WebSession.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    db_session.flush()
    return True


def end_user_sessions(*, db_session: Session, user_id: int) -> int:
    """Sign every live browser session of a user out (disabling them); returns how many were ended."""
    now = utcnow()
    rows = list(
        db_session.scalars(
            select(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        )
    )
    for row in rows:
        row.revoked_at = now
    db_session.flush()
    return len(rows)


def csrf_token(*, session_token: str, secret: str) -> str:
    """The CSRF token bound to a session: HMAC-SHA256 of its token under the server's key."""
    return hmac.new(secret.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(*, presented: str | None, session_token: str, secret: str) -> bool:
    """True when `presented` is the session's CSRF token."""
    if not presented:
        return False
    return hmac.compare_digest(presented, csrf_token(session_token=session_token, secret=secret))


def new_login_csrf() -> str:
    """A random value for the sign-in form's double-submit cookie and hidden field."""
    return secrets.token_urlsafe(24)


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go to after sign-in; anything else (another host, a scheme) becomes `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
