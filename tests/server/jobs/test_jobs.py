"""Background jobs: queued, claimed once, run with progress, failures recorded."""

import threading

import pytest
from sqlalchemy.orm import sessionmaker

from server.jobs import service
from server.jobs.models import Job


@pytest.fixture
def factory(fresh_engine):
    return sessionmaker(bind=fresh_engine, expire_on_commit=False)


@pytest.fixture(autouse=True)
def handlers(monkeypatch):
    """Two test handlers: one counts with progress, one fails."""
    registry = dict(service.HANDLERS)

    def count(*, db_session, job, report):
        for i in range(job.params["n"]):
            report(i + 1, job.params["n"], f"step {i + 1}")
        return {"counted": job.params["n"]}

    def boom(*, db_session, job, report):
        raise RuntimeError("the planner ran out of technicians")

    registry["test.count"] = count
    registry["test.boom"] = boom
    monkeypatch.setattr(service, "HANDLERS", registry)


def test_job_runs_with_progress_and_result(factory):
    """A queued job is run to success, with its result and final progress stored."""
    with factory() as s:
        job = service.submit(db_session=s, kind="test.count", params={"n": 3}, actor="dana")
        s.commit()
    assert service.run_pending(factory=factory) == 1
    with factory() as s:
        done = s.get(Job, job.id)
        assert done.status == "succeeded" and done.result == {"counted": 3}
        assert (done.progress_done, done.progress_total, done.message) == (3, 3, "step 3")
        assert done.started_at and done.finished_at and done.worker


def test_failed_job_is_recorded_and_worker_goes_on(factory):
    """A handler that raises marks its job failed with the reason; the next job still runs."""
    with factory() as s:
        bad = service.submit(db_session=s, kind="test.boom", params={}, actor="dana")
        good = service.submit(db_session=s, kind="test.count", params={"n": 1}, actor="dana")
        s.commit()
    assert service.run_pending(factory=factory) == 2
    with factory() as s:
        assert s.get(Job, bad.id).status == "failed"
        assert "ran out of technicians" in s.get(Job, bad.id).message
        assert s.get(Job, good.id).status == "succeeded"


def test_unknown_kind_is_refused(factory):
    """Submitting a job nobody can run is an error naming the known kinds."""
    with factory() as s, pytest.raises(ValueError, match="no handler for job kind 'nope'"):
        service.submit(db_session=s, kind="nope", params={}, actor="x")


def test_concurrent_workers_claim_each_job_once(factory):
    """Four workers racing over twenty jobs run each exactly once."""
    with factory() as s:
        ids = [
            service.submit(db_session=s, kind="test.count", params={"n": 1}, actor="x").id for _ in range(20)
        ]
        s.commit()
    ran: list[int] = []
    lock = threading.Lock()

    def work(name):
        n = 0
        while True:
            try:
                got = service.run_pending(factory=factory, worker=name, limit=1)
            except Exception:  # SQLite may report 'database is locked' under contention; retry
                continue
            if not got:
                break
            n += got
        with lock:
            ran.append(n)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(ran) == 20
    with factory() as s:
        assert {s.get(Job, i).status for i in ids} == {"succeeded"}
