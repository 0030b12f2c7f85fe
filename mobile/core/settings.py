"""The app's small local settings file: the server, the signed-in CSFR's sync session, the device id.

Remembered between runs so a rep who signed in once can start the app with no signal. The CSFR's
password is never stored; the CouchDB credentials the server handed out are (file mode 0600).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mobile.core.localtime import UTC, load_zone


@dataclass(frozen=True)
class SyncSession:
    """What `GET /api/sync/session` answers: where and as whom the tablet replicates."""

    couchdb_url: str
    database: str
    username: str
    password: str
    technician_id: int
    technician_code: str
    time_zone: str  # the utility's IANA zone (server CURBSTOP_TIMEZONE): every time shown, and "today"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncSession:
        """Parse the server's answer, naming the field that is missing or the zone the tablet cannot use."""
        missing = [
            k
            for k in (
                "couchdb_url",
                "database",
                "username",
                "password",
                "technician_id",
                "technician_code",
                "time_zone",
            )
            if k not in data
        ]
        if missing:
            raise ValueError(f"sync session answer lacks {', '.join(missing)}")
        load_zone(str(data["time_zone"]))
        return cls(
            couchdb_url=str(data["couchdb_url"]).rstrip("/"),
            database=str(data["database"]),
            username=str(data["username"]),
            password=str(data["password"]),
            technician_id=int(data["technician_id"]),
            technician_code=str(data["technician_code"]),
            time_zone=str(data["time_zone"]),
        )


@dataclass
class AppSettings:
    """Everything the app remembers between runs."""

    server_url: str = "http://127.0.0.1:8000"
    username: str = ""
    session: SyncSession | None = None
    device_id: str = field(default_factory=lambda: f"tablet-{uuid.uuid4().hex[:12]}")

    @property
    def signed_in(self) -> bool:
        """Whether a sync session is remembered (the app opens on the route)."""
        return self.session is not None

    @property
    def zone(self) -> ZoneInfo:
        """The utility's zone from the session (UTC before the first sign-in: nothing is shown then)."""
        return load_zone(self.session.time_zone) if self.session else UTC

    @property
    def csfr_id(self) -> str:
        """The id results and events carry: the technician code (e.g. 'T05')."""
        return self.session.technician_code if self.session else self.username


class SettingsFile:
    """Loads and saves `AppSettings` as JSON in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> AppSettings:
        """The saved settings, or fresh ones (a new device id) when there is no readable file."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            settings = AppSettings()
            self.save(settings)
            return settings
        session = data.get("session")
        try:
            remembered = SyncSession.from_json(session) if isinstance(session, dict) else None
        except ValueError:
            # A session saved by an older app (no time zone) or damaged: sign in again, keeping the
            # server and user name, rather than show times in a zone the server did not give.
            remembered = None
        return AppSettings(
            server_url=str(data.get("server_url") or AppSettings.server_url),
            username=str(data.get("username") or ""),
            session=remembered,
            device_id=str(data.get("device_id") or f"tablet-{uuid.uuid4().hex[:12]}"),
        )

    def save(self, settings: AppSettings) -> None:
        """Write atomically with owner-only permissions (it holds CouchDB credentials)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = asdict(settings)
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
