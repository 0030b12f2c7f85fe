"""Live updates for open pages: an in-process broker fed by committed changes, shared across processes on PostgreSQL.

One place notices changes: a SQLAlchemy `after_flush` hook on every session sees which watched tables a
flush wrote (orders, plans, jobs, field results, technicians) and names them as topics. On SQLite the
topics are published to this process's broker after the transaction commits (nothing on rollback). On
PostgreSQL the hook sends `pg_notify('curbstop_web', topics)` inside the transaction, so the database
delivers it only on commit, to every API process; each process LISTENs on one connection of its own
(started with the first page that subscribes) and hands what arrives to its broker. Features never call
this module: whatever commits a change to a watched table is heard, whichever process or code path did it.

Pages subscribe through `GET /events` (server-sent events, `server/web/views.py`): each event is a topic
name and a small JSON body; the page then fetches the fragments that topic affects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

log = logging.getLogger("curbstop.web.events")

CHANNEL = "curbstop_web"
# table -> topic a page listens for
WATCHED: dict[str, str] = {
    "work_orders": "orders",
    "dispatch_plans": "plans",
    "jobs": "jobs",
    "field_results": "field",
    "technicians": "crew",
    "review_items": "review",
    "adjustments": "review",
    "shutoff_batches": "shutoffs",
    "shutoff_exclusions": "shutoffs",
}
_PENDING = "curbstop_web_topics"


class Broker:
    """Fan-out of events to the subscribers of this process; `publish` is safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = set()

    @contextlib.asynccontextmanager
    async def subscription(self, max_queued: int = 100) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue receiving every event published while the block runs."""
        entry = (asyncio.get_running_loop(), asyncio.Queue[dict[str, Any]](max_queued))
        with self._lock:
            self._subscribers.add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._subscribers.discard(entry)

    @property
    def subscribers(self) -> int:
        """How many pages listen in this process."""
        with self._lock:
            return len(self._subscribers)

    def publish(self, message: dict[str, Any]) -> None:
        """Hand `message` to every subscriber; a subscriber too far behind misses it (it re-reads anyway)."""
        with self._lock:
            targets = list(self._subscribers)
        for loop, queue in targets:
            with contextlib.suppress(RuntimeError):  # its loop has closed: it is going away
                loop.call_soon_threadsafe(_offer, queue, message)


def _offer(queue: asyncio.Queue[dict[str, Any]], message: dict[str, Any]) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(message)


BROKER = Broker()


def topics_of(objects: Iterable[object]) -> set[str]:
    """The topics of the watched tables among `objects` (ORM instances)."""
    found = set()
    for obj in objects:
        topic = WATCHED.get(getattr(type(obj), "__tablename__", ""))
        if topic is not None:
            found.add(topic)
    return found


def _after_flush(session: Session, _context: Any) -> None:
    topics = topics_of([*session.new, *session.dirty, *session.deleted])
    if not topics:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Transactional: PostgreSQL delivers it on commit, to every listening process, and drops it on rollback.
        payload = json.dumps({"topics": sorted(topics)})
        connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )
    else:
        session.info.setdefault(_PENDING, set()).update(topics)


def _after_commit(session: Session) -> None:
    topics = session.info.pop(_PENDING, None)
    if topics:
        BROKER.publish({"topics": sorted(topics)})


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def install_session_hooks() -> None:
    """Watch every session of this process for changes pages show (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))


class PgListener(threading.Thread):
    """LISTENs on the PostgreSQL channel and hands each notification to this process's broker."""

    def __init__(self, url: str, broker: Broker = BROKER) -> None:
        super().__init__(name="curbstop-web-listen", daemon=True)
        self.url = url
        self.broker = broker
        self.listening = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        import psycopg

        while not self._halt.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._halt.is_set():
                        for note in conn.notifies(timeout=1.0, stop_after=50):
                            self._deliver(note.payload)
            except psycopg.Error as exc:  # the database restarted: listen again shortly
                self.listening.clear()
                log.warning("live updates: lost the PostgreSQL listener (%s); retrying", exc)
                self._halt.wait(2.0)

    def _deliver(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("live updates: ignoring a malformed notification %r", payload[:200])
            return
        self.broker.publish(message)

    def stop(self) -> None:
        """Ask the thread to end (within a second)."""
        self._halt.set()


_listener: PgListener | None = None
_listener_lock = threading.Lock()


def ensure_listener() -> PgListener | None:
    """On PostgreSQL, start this process's listener once (the first subscribing page does); None on SQLite."""
    global _listener
    from server import db

    engine = db.get_engine()
    if engine.dialect.name != "postgresql":
        return None
    with _listener_lock:
        if _listener is None or not _listener.is_alive():
            url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            _listener = PgListener(url)
            _listener.start()
        return _listener
