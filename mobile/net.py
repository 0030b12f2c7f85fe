"""The two server calls the tablet makes itself (everything else goes through CouchDB)."""

from __future__ import annotations

import httpx

from mobile.core.settings import SyncSession
from mobile.core.signin import SignInError

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class HttpAuthApi:
    """`POST /api/auth/token`, then `GET /api/sync/session` with the bearer token."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport

    def sign_in(self, server_url: str, username: str, password: str) -> SyncSession:
        """CSFR credentials -> the CouchDB session; SignInError with a reason the rep understands."""
        try:
            with httpx.Client(base_url=server_url, timeout=TIMEOUT, transport=self.transport) as client:
                token = client.post("/api/auth/token", data={"username": username, "password": password})
                if token.status_code in (400, 401, 403):
                    raise SignInError("User name or password is wrong")
                if token.status_code != 200:
                    raise SignInError(f"Server answered {token.status_code} to sign-in; try again later")
                body = token.json()
                if body.get("role") != "csfr":
                    raise SignInError(
                        f"{username} is a {body.get('role', 'unknown')} account, not a field rep (csfr)"
                    )
                session = client.get(
                    "/api/sync/session", headers={"Authorization": f"Bearer {body['access_token']}"}
                )
                if session.status_code != 200:
                    raise SignInError(f"Server refused the sync session ({session.status_code})")
                return SyncSession.from_json(session.json())
        except httpx.HTTPError as exc:
            raise SignInError(f"Cannot reach {server_url}: {type(exc).__name__}") from exc
        except (ValueError, KeyError) as exc:
            raise SignInError(f"Unexpected answer from the server: {exc}") from exc
