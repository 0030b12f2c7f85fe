"""Page dependencies: the signed-in person from the session cookie, the roles a page admits, CSRF checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from contracts.codes import Role
from server.auth.service import Principal
from server.deps import AppSettings, DbSession
from server.web import service
from server.web.service import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SignInRequired(Exception):
    """No live session: a page answers with a redirect to /login (htmx: HX-Redirect)."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):
    """Signed in, but the role may not open this page or do this: a 403 page naming who may."""

    def __init__(self, principal: Principal, roles: frozenset[Role]) -> None:
        who = ", ".join(sorted(r.value for r in roles))
        super().__init__(f"a {principal.role.value} may not open this; it needs one of: {who}")
        self.message = str(self)


class CsrfRejected(Exception):
    """An unsafe request without the session's CSRF token: a 403 page."""


def _next_url(request: Request) -> str:
    url = request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


async def web_principal(request: Request, db_session: DbSession, settings: AppSettings) -> Principal:
    """The person signed in with the session cookie; checks the CSRF token on unsafe methods."""
    token = request.cookies.get(SESSION_COOKIE)
    # Async for the form read below; the database look-up runs in the thread pool like a sync route.
    principal = (
        None
        if not token
        else await run_in_threadpool(lambda: service.principal_of(db_session=db_session, token=token))
    )
    if principal is None or token is None:
        if request.method in UNSAFE_METHODS:
            # After signing in, go back to the page the form was on, not to the form's (POST-only) URL.
            back = urlsplit(request.headers.get("HX-Current-URL") or request.headers.get("Referer") or "/")
            raise SignInRequired(back.path + (f"?{back.query}" if back.query else ""))
        raise SignInRequired(_next_url(request))
    secret = settings.resolved_secret_key()
    if request.method in UNSAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if not service.csrf_ok(presented=presented, session_token=token, secret=secret):
            raise CsrfRejected()
    request.state.principal = principal
    request.state.csrf_token = service.csrf_token(session_token=token, secret=secret)
    return principal


WebPrincipal = Annotated[Principal, Depends(web_principal)]


def page_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only signed-in people with one of `roles` (others get a 403 page)."""
    allowed = frozenset(roles)

    async def check(principal: WebPrincipal) -> Principal:
        if principal.role not in allowed:
            raise PageForbidden(principal, allowed)
        return principal

    return check
