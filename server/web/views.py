"""The office web's own routes: sign in and out, the home redirect, live events, vendored JS libraries."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from types import FrameType
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from server.auth.service import Principal, SignInThrottled, sign_in
from server.config import REPO_ROOT
from server.deps import OFFICE, AppSettings, DbSession, SignInGuard, client_address
from server.errors import not_found
from server.web import service
from server.web.deps import CsrfRejected, PageForbidden, SignInRequired, WebPrincipal, page_roles
from server.web.events import BROKER, ensure_listener
from server.web.service import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from server.web.templates import HERE, home_for, render

router = APIRouter(include_in_schema=False)

# The browser libraries, from npm (package-lock.json), served by this server: no CDN, works offline.
VENDOR: dict[str, str] = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet.css": "leaflet/dist/leaflet.css",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "axe.min.js": "axe-core/axe.min.js",
}
NODE_MODULES = REPO_ROOT / "node_modules"
# How long one event stream lasts before the browser reconnects (EventSource does it by itself); bounded
# so a server shutting down never waits long on open pages.
STREAM_S = 300.0
KEEPALIVE_S = 15.0


# Set when uvicorn is asked to stop: open event streams end within a second, so stopping the server (Ctrl+C,
# SIGTERM) never waits on open pages. uvicorn has no hook for this; like sse-starlette, wrap its handler.
SERVER_EXITING = threading.Event()


def _watch_server_exit() -> None:
    try:
        from uvicorn.server import Server
    except ImportError:  # served by something else: streams end after STREAM_S
        return
    original = Server.handle_exit
    if getattr(original, "curbstop_wrapped", False):
        return

    def handle_exit(self: Server, sig: int, frame: FrameType | None) -> None:
        SERVER_EXITING.set()
        original(self, sig, frame)

    handle_exit.curbstop_wrapped = True  # type: ignore[attr-defined]
    Server.handle_exit = handle_exit  # type: ignore[method-assign]


_watch_server_exit()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"


@router.get("/")
def home(request: Request, db_session: DbSession) -> Response:
    """Signed in: the first page the role may open; otherwise the sign-in page."""
    token = request.cookies.get(SESSION_COOKIE)
    principal = service.principal_of(db_session=db_session, token=token) if token else None
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    target = home_for(principal)
    if target is None:
        request.state.principal = principal
        raise PageForbidden(principal, frozenset(OFFICE))
    return RedirectResponse(target, status_code=303)


def _login_page(
    request: Request, *, next_url: str, error: str = "", username: str = "", status: int = 200
) -> HTMLResponse:
    value = service.new_login_csrf()
    response = render(
        request,
        "login.html",
        {"next": next_url, "error": error, "username": username, "login_csrf": value},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/login",
        max_age=3600,
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """The sign-in form."""
    return _login_page(request, next_url=service.safe_next(next))


@router.post("/login")
def login(
    request: Request,
    db_session: DbSession,
    settings: AppSettings,
    guard: SignInGuard,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the password and open a session (cookie: HttpOnly, SameSite=Lax, Secure over https)."""
    target = service.safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not csrf_token or cookie != csrf_token:
        return _login_page(
            request,
            next_url=target,
            username=username,
            error="the sign-in form expired; sign in again",
            status=403,
        )
    throttle, limits = guard
    try:
        user = sign_in(
            db_session=db_session,
            username=username.strip(),
            password=password,
            address=client_address(request),
            throttle=throttle,
            limits=limits,
        )
    except SignInThrottled as exc:
        page = _login_page(request, next_url=target, username=username, error=exc.message, status=429)
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    if user is None:
        return _login_page(
            request, next_url=target, username=username, error="wrong username or password", status=401
        )
    token = service.start_session(
        db_session=db_session,
        user=user,
        lifetime_minutes=settings.access_token_minutes,
        user_agent=request.headers.get("User-Agent", ""),
    )
    db_session.commit()
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
        max_age=settings.access_token_minutes * 60,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, _: WebPrincipal, db_session: DbSession) -> Response:
    """Sign out: the session stops working at once, here and in every other tab."""
    token = request.cookies.get(SESSION_COOKIE, "")
    service.end_session(db_session=db_session, token=token)
    db_session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


Watcher = Annotated[Principal, Depends(page_roles(*OFFICE))]


@router.get("/events")
async def events(request: Request, _: Watcher, db_session: DbSession) -> StreamingResponse:
    """Server-sent events: `changed` with the topics (orders, plans, jobs, field, crew) of each commit."""
    # The stream can stay open for minutes: give the database connection back now.
    await run_in_threadpool(db_session.close)
    await run_in_threadpool(ensure_listener)

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_S
        quiet_since = loop.time()
        async with BROKER.subscription() as queue:
            yield "retry: 2000\n: connected\n\n"
            while loop.time() < ends and not SERVER_EXITING.is_set():
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    if loop.time() - quiet_since >= KEEPALIVE_S:
                        quiet_since = loop.time()
                        yield ": keep-alive\n\n"
                    continue
                quiet_since = loop.time()
                yield f"event: changed\ndata: {json.dumps(message)}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/web/vendor/{name}")
def vendor(name: str) -> FileResponse:
    """A browser library from node_modules (only the files named in VENDOR)."""
    relative = VENDOR.get(name)
    path = NODE_MODULES / relative if relative else None
    if path is None or not path.is_file():
        raise not_found("library file", name)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


def _signin_redirect(request: Request, exc: SignInRequired) -> Response:
    target = "/login" if exc.next_url in ("", "/") else "/login?" + urlencode({"next": exc.next_url})
    if request.headers.get("HX-Request"):
        # htmx follows HX-Redirect with a full page load; a 303 would swap the sign-in page into a fragment.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _forbidden(request: Request, exc: PageForbidden) -> Response:
    return render(
        request, "error.html", {"title": "Not for your role", "message": exc.message}, status_code=403
    )


def _csrf(request: Request, _exc: CsrfRejected) -> Response:
    message = "this form is out of date (its security token does not match your sign-in); reload the page"
    return render(request, "error.html", {"title": "Reload the page", "message": message}, status_code=403)


def install(app: FastAPI) -> None:
    """Add the office pages to `app`: routes, their error pages, static files."""
    from server.web.board.views import router as board_router
    from server.web.review.views import router as review_router
    from server.web.supervisor.views import router as supervisor_router

    app.include_router(router)
    app.include_router(board_router)
    app.include_router(review_router)
    app.include_router(supervisor_router)
    app.add_exception_handler(SignInRequired, _signin_redirect)  # type: ignore[arg-type]
    app.add_exception_handler(PageForbidden, _forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(CsrfRejected, _csrf)  # type: ignore[arg-type]
    app.mount("/web/static", StaticFiles(directory=HERE / "static"), name="web-static")
