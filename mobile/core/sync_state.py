"""What the route screen shows about sync: state, last successful sync, the last problem."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from zoneinfo import ZoneInfo

from mobile.core.localtime import hm_zone
from mobile.core.observable import Observable


class SyncStatus(StrEnum):
    """Where the background sync is."""

    IDLE = "idle"  # not started (no session)
    SYNCING = "syncing"
    SYNCED = "synced"
    OFFLINE = "offline"  # the server cannot be reached; retrying with back-off
    PAUSED = "paused"  # the rep (or a test) switched sync off
    ERROR = "error"  # credentials refused: sign in again


class SyncState(Observable):
    """Updated by the sync thread, observed by the route screen."""

    def __init__(self) -> None:
        super().__init__()
        self.status = SyncStatus.IDLE
        self.last_sync_at: dt.datetime | None = None
        self.message = ""
        self.pushed_seq = 0  # local store sequence known to be on the server
        # Documents sync could not prove are on the other side ("result:... refused: ..."); kept in
        # the store and reported to the server until they land (mobile.sync.Store.sync_problems).
        self.problems: list[str] = []

    def set_problems(self, problems: list[str]) -> None:
        """Replace the list of open sync problems (one line each)."""
        if problems != self.problems:
            self.problems = list(problems)
            self.changed()

    def set(self, status: SyncStatus, message: str = "", *, synced_at: dt.datetime | None = None) -> None:
        """Move to `status`; a sync time marks a completed two-way sync."""
        self.status = status
        self.message = message
        if synced_at is not None:
            self.last_sync_at = synced_at
        self.changed()

    def label(self, now: dt.datetime, zone: ZoneInfo) -> str:
        """'Synced · last sync 3 min ago', 'Offline · last sync 10:42 PST' (the utility's zone), ..."""
        when = "never"
        if self.last_sync_at is not None:
            age_s = max(0.0, (now - self.last_sync_at).total_seconds())
            if age_s < 60:
                when = "just now"
            elif age_s < 3600:
                when = f"{int(age_s // 60)} min ago"
            else:
                when = hm_zone(self.last_sync_at, zone)
        text = {
            SyncStatus.IDLE: "Sync not started",
            SyncStatus.SYNCING: "Syncing...",
            SyncStatus.SYNCED: "Synced",
            SyncStatus.OFFLINE: "Offline",
            SyncStatus.PAUSED: "Sync paused",
            SyncStatus.ERROR: "Sync error",
        }[self.status]
        suffix = f" - {self.message}" if self.message and self.status is SyncStatus.ERROR else ""
        if self.problems:
            count = len(self.problems)
            suffix += f" · {count} document{'s' if count != 1 else ''} not on the server"
        return f"{text} · last sync {when}{suffix}"
