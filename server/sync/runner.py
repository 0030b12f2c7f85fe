"""The server's sync loop: publish changed orders and follow every CSFR database, every few seconds."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from server.config import Settings
from server.results.service import fetch_photos
from server.sync.couch import CouchAdmin, CouchConfig
from server.sync.service import follow, provision_all, publish_pending

log = logging.getLogger("curbstop.sync")


def admin_from(settings: Settings) -> CouchAdmin | None:
    """A CouchDB admin client when COUCHDB_URL is set, else None (sync off)."""
    if not settings.couchdb_url:
        return None
    return CouchAdmin(CouchConfig.from_url(settings.couchdb_url))


def sync_once(
    *, factory: sessionmaker[Session], admin: CouchAdmin, secret: str, provision: bool = False
) -> dict[str, int]:
    """One pass: (provision,) publish, follow. Returns counts."""
    with factory() as session:
        if provision:
            provision_all(db_session=session, admin=admin, secret=secret)
        published = publish_pending(db_session=session, admin=admin)
        followed = follow(db_session=session, admin=admin)
        photos = fetch_photos(db_session=session, admin=admin)
    for error in published.errors + followed.errors:
        log.warning("sync: %s", error)
    return {
        "published": published.published,
        "withdrawn": published.withdrawn,
        "results": followed.results,
        "events": followed.events,
        "photos": photos,
        "errors": len(published.errors) + len(followed.errors),
    }


class SyncThread(threading.Thread):
    """Runs sync_once every `interval_s`; a CouchDB outage is logged and retried, never fatal."""

    def __init__(
        self, factory: sessionmaker[Session], admin: CouchAdmin, secret: str, interval_s: float = 2.0
    ):
        super().__init__(name="curbstop-sync", daemon=True)
        self.factory, self.admin, self.secret, self.interval_s = factory, admin, secret, interval_s
        self.stopping = threading.Event()

    def run(self) -> None:
        provisioned = False
        while not self.stopping.is_set():
            try:
                sync_once(
                    factory=self.factory, admin=self.admin, secret=self.secret, provision=not provisioned
                )
                provisioned = True
            except Exception:
                log.exception("sync pass failed; retrying")
            self.stopping.wait(self.interval_s)

    def stop(self) -> None:
        self.stopping.set()
