"""Response headers every page and API answer carries, and the CORS policy (off unless configured)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.config import Settings


def content_security_policy(*, tile_url: str = "") -> str:
    """The CSP of the office pages: scripts only from this server (the templates have no inline script),
    no framing, forms posting only here. Inline style attributes stay allowed: the board's timeline
    positions its bars with them, and a style attribute cannot run code."""
    img = ["'self'", "data:", "blob:"]
    if tile_url:
        parts = urlsplit(tile_url)
        # A Leaflet subdomain template ({s}.tile.example.org) becomes a CSP wildcard (*.tile.example.org).
        host = parts.netloc.replace("{s}.", "*.").replace("{s}", "*")
        if parts.scheme in ("http", "https") and host:
            img.append(f"{parts.scheme}://{host}")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {' '.join(img)}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """Pure ASGI middleware (streams such as the board's live events pass through unbuffered)."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", csp.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the security headers and, only when origins are configured, CORS for exactly those origins."""
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=False,  # bearer tokens, not cookies, cross sites
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders, csp=content_security_policy(tile_url=settings.tile_url))
