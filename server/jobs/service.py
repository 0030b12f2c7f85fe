"""Submit, claim, run and report background jobs.

A job row is the queue entry. Workers (a thread inside each API process, or `curbstop worker`) claim the
oldest queued job in a short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never
take the same job; SQLite serialises writers anyway), run its handler with its own session, and write
progress as they go. A handler is `fn(*, db_session, job, report) -> dict` registered under a kind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from server.db import utcnow
from server.jobs.models import Job

log = logging.getLogger("curbstop.jobs")


class Report(Protocol):
    """Progress callback handed to handlers: report(done, total, message)."""

    def __call__(self, done: int, total: int, message: str = "") -> None: ...


Handler = Callable[..., dict[str, Any]]
HANDLERS: dict[str, Handler] = {}
# Modules whose import registers handlers; loaded before a job is submitted or run.
HANDLER_MODULES = ("server.dispatch.service", "server.orders.review")


def load_handlers() -> None:
    """Import every module that registers job handlers (idempotent)."""
    import importlib

    for name in HANDLER_MODULES:
        importlib.import_module(name)


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register a function as the handler of jobs of `kind`."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def submit(*, db_session: Session, kind: str, params: dict[str, Any], actor: str) -> Job:
    """Queue a job (the caller commits)."""
    load_handlers()
    if kind not in HANDLERS:
        raise ValueError(f"no handler for job kind {kind!r}; known: {', '.join(sorted(HANDLERS))}")
    job = Job(kind=kind, params=params, created_by=actor)
    db_session.add(job)
    db_session.flush()
    return job


def claim(*, db_session: Session, worker: str) -> Job | None:
    """Take the oldest queued job for `worker`, or None; commits the claim."""
    query = select(Job).where(Job.status == "queued").order_by(Job.created_at, Job.id).limit(1)
    if db_session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    job = db_session.scalar(query)
    if job is None:
        db_session.rollback()
        return None
    # The status guard makes the claim safe even without row locks.
    claimed = db_session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == "queued")
        .values(status="running", worker=worker, started_at=utcnow())
    ).rowcount
    db_session.commit()
    if claimed != 1:
        return None
    db_session.refresh(job)
    return job


def _sqlite_progress(factory: sessionmaker[Session], job_id: int) -> tuple[Report, Callable[[], None]]:
    """A non-blocking progress writer for SQLite, and its closer.

    SQLite has one writer at a time and our transactions take the write lock up front, so while the
    job's own transaction is open a progress update cannot be written; it must not wait (the job is
    waiting on it). This writer uses its own connection with no busy wait and skips a report it cannot
    write now; the job's final state is always recorded.
    """
    engine = factory.kw["bind"]
    raw = engine.raw_connection()
    conn = raw.driver_connection
    conn.execute("PRAGMA busy_timeout = 0")

    def report(done: int, total: int, message: str = "") -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE jobs SET progress_done = ?, progress_total = ?, message = ? WHERE id = ?",
                (done, total, message, job_id),
            )
            conn.execute("COMMIT")
        except sqlite3.OperationalError:
            with contextlib.suppress(sqlite3.OperationalError):
                conn.execute("ROLLBACK")
            log.info("job %s: progress %s/%s not recorded now (the job holds the lock)", job_id, done, total)

    def close() -> None:
        conn.execute("PRAGMA busy_timeout = 30000")  # the pooled connection's usual wait
        raw.close()

    return report, close


def run(*, factory: sessionmaker[Session], job_id: int) -> None:
    """Run a claimed job to its end, recording success, result and progress, or the failure."""
    sqlite = factory.kw["bind"].dialect.name == "sqlite"
    with factory() as progress_session, factory() as work_session:
        job = work_session.get(Job, job_id)
        assert job is not None
        close_progress: Callable[[], None] = lambda: None  # noqa: E731
        if sqlite:
            work_session.commit()  # release the lock taken to read the job
            report, close_progress = _sqlite_progress(factory, job_id)
        else:

            def report(done: int, total: int, message: str = "") -> None:
                progress_session.execute(
                    update(Job)
                    .where(Job.id == job_id)
                    .values(progress_done=done, progress_total=total, message=message)
                )
                progress_session.commit()

        try:
            result = HANDLERS[job.kind](db_session=work_session, job=job, report=report)
            work_session.commit()
            values: dict[str, Any] = {
                "status": "succeeded",
                "result": result,
                "finished_at": utcnow(),
                "progress_done": Job.progress_total,
            }
        except Exception as exc:  # a failed job is recorded, never lost; the worker goes on
            work_session.rollback()
            log.error("job %s (%s) failed: %s", job_id, job.kind, traceback.format_exc())
            values = {"status": "failed", "message": f"{type(exc).__name__}: {exc}", "finished_at": utcnow()}
        finally:
            close_progress()
        progress_session.execute(update(Job).where(Job.id == job_id).values(**values))
        progress_session.commit()


def run_pending(
    *, factory: sessionmaker[Session], worker: str | None = None, limit: int | None = None
) -> int:
    """Claim and run queued jobs until none is left (or `limit` ran); return how many ran."""
    load_handlers()
    name = worker or f"{socket.gethostname()}:{os.getpid()}"
    ran = 0
    while limit is None or ran < limit:
        with factory() as session:
            job = claim(db_session=session, worker=name)
        if job is None:
            return ran
        run(factory=factory, job_id=job.id)
        ran += 1
    return ran


class WorkerThread(threading.Thread):
    """A daemon thread that polls for queued jobs and runs them one at a time."""

    def __init__(self, factory: sessionmaker[Session], poll_s: float = 1.0) -> None:
        super().__init__(name="curbstop-jobs", daemon=True)
        self.factory = factory
        self.poll_s = poll_s
        self.wake = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                run_pending(factory=self.factory)
            except Exception:  # keep polling: a database hiccup must not kill the worker
                log.exception("job worker loop error")
            self.wake.wait(self.poll_s)
            self.wake.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
