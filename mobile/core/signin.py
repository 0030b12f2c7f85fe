"""Sign-in: server URL and CSFR credentials in, a remembered sync session out."""

from __future__ import annotations

from typing import Protocol

from mobile.core.observable import Observable
from mobile.core.settings import AppSettings, SettingsFile, SyncSession


class SignInError(Exception):
    """A sign-in failure with a message the rep can act on."""


class AuthApi(Protocol):
    """The server calls sign-in needs (`mobile.net.HttpAuthApi` over HTTP; a fake in tests)."""

    def sign_in(self, server_url: str, username: str, password: str) -> SyncSession:
        """Exchange CSFR credentials for the CouchDB session; raise SignInError with a reason."""
        ...


class SignInModel(Observable):
    """The sign-in form: fields, validation, the call, and the remembered result."""

    def __init__(self, api: AuthApi, settings: AppSettings, settings_file: SettingsFile) -> None:
        super().__init__()
        self.api = api
        self.settings = settings
        self.settings_file = settings_file
        self.server_url = settings.server_url
        self.username = settings.username
        self.error = ""
        self.busy = False

    def validate(self, password: str) -> str:
        """The first problem with the form, or ''."""
        url = self.server_url.strip()
        if not url.startswith(("http://", "https://")):
            return "Server URL must start with http:// or https://"
        if not self.username.strip():
            return "Enter your user name"
        if not password:
            return "Enter your password"
        return ""

    def sign_in(self, password: str) -> bool:
        """Validate, call the server, remember the session; False with `error` set on failure."""
        self.error = self.validate(password)
        if self.error:
            self.changed()
            return False
        self.busy = True
        self.changed()
        try:
            session = self.api.sign_in(self.server_url.strip().rstrip("/"), self.username.strip(), password)
        except SignInError as exc:
            self.error = str(exc)
            return False
        finally:
            self.busy = False
            self.changed()
        self.settings.server_url = self.server_url.strip().rstrip("/")
        self.settings.username = self.username.strip()
        self.settings.session = session
        self.settings_file.save(self.settings)
        self.error = ""
        self.changed()
        return True

    def sign_out(self) -> None:
        """Forget the session (keeps the server URL and user name for next time)."""
        self.settings.session = None
        self.settings_file.save(self.settings)
        self.changed()
