"""Background sync: a thread that keeps the local store and the CSFR's CouchDB database in step.

Each round is `mobile.sync.Sync.run_once` (pull, resolve, push). Between rounds it waits for a
local change, a "sync now", or `poll_s`; while offline it backs off (with jitter) up to
`max_backoff_s`. The UI never waits on it: state goes to a `SyncState` the route screen observes.
The local sequence pushed by the last good round is kept in `_local/curbstop-app-sync`, so "not
yet synced" markers survive a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable

from mobile.core.settings import SyncSession
from mobile.core.sync_state import SyncState, SyncStatus
from mobile.sync import AuthError, RemoteDB, Store, Sync, SyncError

log = logging.getLogger(__name__)
STATE_DOC = "_local/curbstop-app-sync"


def remote_for(session: SyncSession) -> RemoteDB:
    """The CSFR's database with the CouchDB credentials the server handed out."""
    return RemoteDB(session.couchdb_url, session.database, auth=(session.username, session.password))


class SyncRunner:
    """Runs two-way sync on its own thread; `sync_now()`, `pause()`, `resume()`, `stop()`."""

    def __init__(
        self,
        store: Store,
        remote_factory: Callable[[], RemoteDB],
        state: SyncState,
        *,
        poll_s: float = 20.0,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        on_synced: Callable[[], None] = lambda: None,
        photos_last: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self.remote_factory = remote_factory
        self.state = state
        self.poll_s = poll_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_synced = on_synced
        # Asked every round: on a metered link, every event and photo-less result goes before any photo.
        self.photos_last = photos_last
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        saved = store.get_local(STATE_DOC) or {}
        state.pushed_seq = int(saved.get("pushed_seq", 0))
        if saved.get("last_sync_at"):
            state.last_sync_at = dt.datetime.fromisoformat(saved["last_sync_at"])

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="curbstop-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop and wait for the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def sync_now(self) -> None:
        """Run a round as soon as possible (also resumes a paused sync)."""
        self._paused.clear()
        self._wake.set()

    def pause(self) -> None:
        """Stop replicating until `resume()` (the rep's 'work offline', or a test going offline)."""
        self._paused.set()
        self.state.set(SyncStatus.PAUSED)

    def resume(self) -> None:
        """Replicate again."""
        self.sync_now()

    @property
    def paused(self) -> bool:
        """Whether sync is switched off."""
        return self._paused.is_set()

    def run_round(self) -> bool:
        """One pull-resolve-push; True when it completed. Updates the state either way."""
        self.state.set(SyncStatus.SYNCING)
        seq_before = self.store.update_seq
        try:
            with self.remote_factory() as remote:
                result = Sync(self.store, remote, photos_last=self.photos_last()).run_once()
        except AuthError as exc:
            self.state.set(SyncStatus.ERROR, f"credentials refused ({exc}); sign in again")
            raise
        except SyncError as exc:
            self.state.set(SyncStatus.OFFLINE, str(exc))
            return False
        now = dt.datetime.now(dt.UTC)
        self.state.pushed_seq = seq_before
        saved = self.store.get_local(STATE_DOC)
        self.store.put_local(
            {
                "_id": STATE_DOC,
                "_rev": saved["_rev"] if saved else None,
                "pushed_seq": seq_before,
                "last_sync_at": now.isoformat(),
            }
        )
        self.rounds += 1
        # Never silent: what sync could not prove landed stays on screen until it does.
        self.state.set_problems([f"{p.doc_id} {p.direction} {p.kind}: {p.reason}" for p in result.problems])
        self.state.set(SyncStatus.SYNCED, synced_at=now)
        self.on_synced()
        return True

    def _loop(self) -> None:
        backoff = self.min_backoff_s
        while not self._stop.is_set():
            if self._paused.is_set():
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                ok = self.run_round()
            except AuthError:
                return  # retrying cannot fix credentials; the screen asks the rep to sign in again
            except Exception as exc:  # keep the thread alive; the state shows what happened
                log.exception("sync round failed")
                self.state.set(SyncStatus.OFFLINE, f"{type(exc).__name__}: {exc}")
                ok = False
            if ok:
                backoff = self.min_backoff_s
                self._wait_for_work(self.poll_s)
            else:
                self._wake.wait(backoff * random.uniform(0.5, 1.0))
                self._wake.clear()
                backoff = min(backoff * 2, self.max_backoff_s)

    def _wait_for_work(self, timeout_s: float) -> None:
        """Until a local change, a wake-up, a stop or the poll interval."""
        seq = self.store.update_seq
        deadline = timeout_s
        while deadline > 0 and not self._stop.is_set() and not self._wake.is_set():
            if self.store.wait_for_change(seq, min(0.5, deadline)):
                return
            deadline -= 0.5
        self._wake.clear()
