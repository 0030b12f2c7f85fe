"""The spool's dead-letter area and the sender: what the server refuses is set aside with its own message,
later reads keep flowing, outages are retried; `curbstop bridge spool list|show|retry|discard` manage it.

The server here is an `httpx.MockTransport` speaking the handhelds upload contract with Curbstop's error
body (``{"error": {"code", "message", "fields"}}``); the real server is in test_demo_dock.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from contracts.handheld import HandheldUpload, ReadRecord, decode_reads
from device_bridge.sample import sample_reads, sample_routes
from device_bridge.spool import Sender, ServerClient, ServerError, Spool, SpoolError


class FakeServer:
    """Known devices and meters; refuses an upload whole, naming what is unknown, as server/handhelds does."""

    def __init__(self, devices: set[str], meters: set[str]) -> None:
        self.devices = devices
        self.meters = meters
        self.stored: dict[str, ReadRecord] = {}
        self.posts = 0
        self.status_override: int | None = None  # answer every request with this status
        self.network_down = False

    @staticmethod
    def _error(status: int, code: str, message: str) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": code, "message": message, "fields": []}})

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.network_down:
            raise httpx.ConnectError("connection refused", request=request)
        self.posts += 1
        if self.status_override is not None:
            return self._error(self.status_override, "busy", f"status {self.status_override} for the test")
        if request.url.path.endswith("/routes"):
            device = request.url.path.split("/")[-2]
            if device not in self.devices:
                return self._error(404, "unknown_handheld", f"hand-held {device!r} is not registered")
            return httpx.Response(200, json=[])
        upload = HandheldUpload.model_validate_json(request.content)
        if upload.device_id not in self.devices:
            return self._error(404, "unknown_handheld", f"hand-held {upload.device_id!r} is not registered")
        unknown = sorted({r.meter_serial for r in upload.reads} - self.meters)
        if unknown:
            return self._error(422, "unknown_meter", f"unknown meter serial(s): {', '.join(unknown)}")
        new = [r for r in upload.reads if r.idempotency_key not in self.stored]
        for r in new:
            self.stored[r.idempotency_key] = r
        return httpx.Response(201, json={"accepted": len(new), "duplicates": len(upload.reads) - len(new)})


def _reads(device: str, n: int, seed: int, hour: int = 8) -> list[ReadRecord]:
    """`n` synthetic reads of meters M<seed>-0, M<seed>-1, ... (distinct per seed)."""
    start = dt.datetime(2026, 11, 20, hour, tzinfo=dt.UTC)
    reads = sample_reads(device, sample_routes(n, seed=seed), seed=seed, start=start)
    return [r.model_copy(update={"meter_serial": f"M{seed}-{i}"}) for i, r in enumerate(reads)]


@pytest.fixture
def spool(tmp_path: Path):
    s = Spool(tmp_path / "spool.db")
    yield s
    s.close()


def _sender(spool: Spool, server: FakeServer, batch_size: int = 200) -> Sender:
    client = ServerClient("http://server.test", "tok", transport=httpx.MockTransport(server.handler))
    return Sender(spool, client, batch_size=batch_size)


def test_a_refused_batch_is_set_aside_and_the_later_good_batch_is_delivered(spool: Spool, caplog):
    """A batch of reads of meters the server does not know (422) moves to the dead letters with the server's
    message; the batch unloaded after it still reaches the server (it used to wait behind it forever)."""
    bad = _reads("HH-0001", 5, seed=1)
    good = _reads("HH-0001", 7, seed=2, hour=12)
    server = FakeServer({"HH-0001"}, meters={r.meter_serial for r in good})
    spool.store_batch("HH-0001", "a" * 64, bad)
    spool.store_batch("HH-0001", "b" * 64, good)
    with caplog.at_level(logging.INFO, logger="curbstop.bridge"):
        assert _sender(spool, server).drain_once() is True
    assert set(server.stored) == {r.idempotency_key for r in good}
    [dead] = spool.dead_batches()
    assert (dead.device_id, dead.batch_sha256, dead.read_count, dead.http_status) == (
        "HH-0001",
        "a" * 64,
        5,
        422,
    )
    assert dead.error.startswith("unknown meter serial(s): ") and bad[0].meter_serial in " ".join(dead.errors)
    assert spool.counts().unsent == 0 and spool.counts().dead == 5
    # The log carries the server's own words, not "Client error '422 Unprocessable Entity' for url ...".
    assert f"unknown meter serial(s): {bad[0].meter_serial}" in caplog.text
    assert "Client error" not in caplog.text and f"dead batch {dead.id}" in caplog.text


def test_one_unknown_meter_holds_back_only_its_own_read(spool: Spool):
    """The server refuses a whole upload for one unknown meter; halving the post delivers the other nine."""
    reads = _reads("HH-0001", 10, seed=3)
    server = FakeServer({"HH-0001"}, meters={r.meter_serial for r in reads} - {reads[6].meter_serial})
    spool.store_batch("HH-0001", "c" * 64, reads)
    _sender(spool, server).drain_once()
    assert set(server.stored) == {r.idempotency_key for i, r in enumerate(reads) if i != 6}
    [dead] = spool.dead_batches()
    assert dead.read_count == 1 and dead.errors == [f"unknown meter serial(s): {reads[6].meter_serial}"]
    [(read, message)] = spool.dead_reads(dead.id)
    assert read == reads[6] and message == dead.error


def test_an_unregistered_device_sets_its_batch_aside_whole_in_one_post(spool: Spool):
    """A 404 for the device is not about single reads: the batch is set aside at once, not halved."""
    reads = _reads("HH-0099", 12, seed=4)
    server = FakeServer({"HH-0001"}, meters={r.meter_serial for r in reads})
    spool.store_batch("HH-0099", "d" * 64, reads)
    _sender(spool, server).drain_once()
    assert server.posts == 1
    [dead] = spool.dead_batches()
    assert (dead.read_count, dead.http_status) == (12, 404)
    assert dead.error == "hand-held 'HH-0099' is not registered"


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429, 401, 403])
def test_outages_throttling_and_token_refusals_stay_queued_for_the_back_off(spool: Spool, status: int):
    """5xx, 408, 429 (and the station's token, 401/403) are not the batch's fault: nothing is set aside,
    the reads stay queued and the sender backs off with the server's message."""
    reads = _reads("HH-0001", 4, seed=5)
    server = FakeServer({"HH-0001"}, meters={r.meter_serial for r in reads})
    server.status_override = status
    spool.store_batch("HH-0001", "e" * 64, reads)
    with pytest.raises(ServerError) as caught:
        _sender(spool, server).drain_once()
    assert caught.value.status == status and f"status {status} for the test" in str(caught.value)
    assert spool.dead_batches() == [] and spool.counts().unsent == 4
    server.status_override = None
    _sender(spool, server).drain_once()
    assert len(server.stored) == 4 and spool.counts().unsent == 0


def test_a_network_error_keeps_the_reads_queued(spool: Spool):
    """No answer at all is an outage: the reads stay queued, nothing is dead-lettered."""
    reads = _reads("HH-0001", 3, seed=6)
    server = FakeServer({"HH-0001"}, meters={r.meter_serial for r in reads})
    server.network_down = True
    spool.store_batch("HH-0001", "f" * 64, reads)
    with pytest.raises(httpx.ConnectError):
        _sender(spool, server).drain_once()
    assert spool.dead_batches() == [] and spool.counts().unsent == 3


def test_retry_after_registering_the_device_delivers_the_batch(spool: Spool):
    """Retry puts a dead batch back in the queue; once the cause is fixed on the server it is delivered,
    and the dead batch records who retried it and when."""
    reads = _reads("HH-0099", 6, seed=7)
    server = FakeServer(set(), meters={r.meter_serial for r in reads})
    spool.store_batch("HH-0099", "g" * 64, reads)
    sender = _sender(spool, server)
    sender.drain_once()
    [dead] = spool.dead_batches()
    server.devices.add("HH-0099")  # a dispatcher registers the hand-held
    assert spool.retry(dead.id, by="sky") == 6
    assert spool.counts().unsent == 6 and spool.counts().dead == 0
    sender.drain_once()
    assert len(server.stored) == 6 and spool.dead_batches() == []
    [done] = spool.dead_batches(include_resolved=True)
    assert (done.state, done.resolved_by) == ("retried", "sky") and done.resolved_at
    with pytest.raises(SpoolError, match="already retried"):
        spool.retry(dead.id, by="sky")


def test_discard_writes_the_reads_to_a_file_and_keeps_them_in_the_spool(spool: Spool, tmp_path: Path):
    """Discarding loses nothing silently: the reads go to a JSON Lines file, stay in the spool, and the
    dead batch records who discarded it, when and why; it can no longer be retried."""
    reads = _reads("HH-0001", 4, seed=8)
    server = FakeServer({"HH-0001"}, meters=set())
    spool.store_batch("HH-0001", "h" * 64, reads)
    _sender(spool, server).drain_once()
    [dead] = spool.dead_batches()
    path = spool.discard(dead.id, by="sky", reason="test meters")
    assert path.parent == tmp_path / "discarded"
    assert decode_reads(path.read_bytes()) == reads
    [gone] = spool.dead_batches(include_resolved=True)
    assert (gone.state, gone.resolved_by, gone.note, gone.export_path) == (
        "discarded",
        "sky",
        "test meters",
        str(path),
    )
    assert spool.dead_batches() == [] and len(spool.dead_reads(dead.id)) == 4
    assert spool.counts().total == 4 and spool.counts().unsent == 0
    with pytest.raises(SpoolError, match="already discarded"):
        spool.retry(dead.id, by="sky")


def test_a_spool_file_from_before_the_dead_letters_opens_and_drains(tmp_path: Path):
    """A station upgraded in place keeps its queued reads: the old file gains the new columns on open."""
    path = tmp_path / "old.db"
    reads = _reads("HH-0001", 2, seed=9)
    db = sqlite3.connect(path)
    db.executescript(
        """CREATE TABLE batch (sha256 TEXT PRIMARY KEY, device_id TEXT NOT NULL, read_count INTEGER NOT NULL,
               received_at TEXT NOT NULL);
           CREATE TABLE read (idempotency_key TEXT PRIMARY KEY, device_id TEXT NOT NULL,
               batch_sha256 TEXT NOT NULL, body TEXT NOT NULL, received_at TEXT NOT NULL, sent_at TEXT,
               duplicate INTEGER NOT NULL DEFAULT 0);"""
    )
    db.executemany(
        "INSERT INTO read (idempotency_key, device_id, batch_sha256, body, received_at) VALUES (?, ?, ?, ?, ?)",
        [
            (r.idempotency_key, "HH-0001", "z" * 64, r.model_dump_json(), "2026-11-20T08:00:00Z")
            for r in reads
        ],
    )
    db.commit()
    db.close()
    spool = Spool(path)
    try:
        [(device, batch, queued)] = spool.unsent()
        assert (device, batch, queued) == ("HH-0001", "z" * 64, reads)
    finally:
        spool.close()


def test_a_route_download_refusal_carries_the_servers_message():
    """GET routes for an unregistered device raises the server's sentence, for the station's log."""
    server = FakeServer(set(), set())
    client = ServerClient("http://server.test", "tok", transport=httpx.MockTransport(server.handler))
    with pytest.raises(ServerError) as caught:
        client.routes_for("HH-0001")
    assert caught.value.status == 404 and caught.value.refused
    assert str(caught.value) == (
        "server refused the route download for HH-0001 (404): hand-held 'HH-0001' is not registered"
    )


def test_the_server_message_is_read_from_either_error_shape():
    """Curbstop's {"error": {"message"}} and FastAPI's {"detail": ...} both give the sentence; text otherwise."""
    from device_bridge.spool import server_message

    assert (
        server_message(httpx.Response(404, json={"error": {"message": "no such thing"}})) == "no such thing"
    )
    assert server_message(httpx.Response(404, json={"detail": "gone"})) == "gone"
    detail = [{"loc": ["body", "reads", 0, "reading"], "msg": "too big"}]
    assert server_message(httpx.Response(422, json={"detail": detail})) == "body.reads.0.reading: too big"
    assert server_message(httpx.Response(502, text="Bad Gateway from proxy")) == "Bad Gateway from proxy"


# -- the commands ------------------------------------------------------------------------------------


@pytest.fixture
def dead_spool(tmp_path: Path) -> tuple[Path, list[ReadRecord]]:
    """A spool file with one dead batch (unknown meters) and one delivered batch."""
    path = tmp_path / "spool.db"
    spool = Spool(path)
    bad = _reads("HH-0001", 3, seed=10)
    good = _reads("HH-0001", 2, seed=11, hour=13)
    spool.store_batch("HH-0001", "a" * 64, bad)
    spool.store_batch("HH-0001", "b" * 64, good)
    _sender(spool, FakeServer({"HH-0001"}, {r.meter_serial for r in good})).drain_once()
    spool.close()
    return path, bad


def _run(*args: str) -> tuple[int, str]:
    from curbstop_cli import app

    result = CliRunner().invoke(app, ["bridge", "spool", *args], env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_spool_list_shows_each_dead_batch_with_device_count_first_error_and_time(dead_spool):
    """`curbstop bridge spool list` names id, device, reads, status, the server's first error and when (in
    the zone asked for); `show` lists the reads with the server's message."""
    path, bad = dead_spool
    code, out = _run("list", "--spool", str(path), "--timezone", "America/Los_Angeles")
    assert code == 0, out
    assert "HH-0001" in out and " 3 " in out and "422" in out and "unknown meter serial(s)" in out
    assert "PST" in out and "spool retry" in out
    code, out = _run("show", "1", "--spool", str(path))
    assert code == 0, out
    assert all(r.meter_serial in out for r in bad)


def test_spool_discard_needs_an_id_and_yes_and_records_who(dead_spool):
    """Without --yes nothing is discarded (exit 2); with it the reads go to a file and list --all names who."""
    path, bad = dead_spool
    code, out = _run("discard", "1", "--spool", str(path))
    assert code == 2 and "--yes" in out
    spool = Spool(path)
    assert [d.state for d in spool.dead_batches()] == ["dead"]
    spool.close()
    code, out = _run("discard", "1", "--yes", "--by", "sky", "--reason", "test meters", "--spool", str(path))
    assert code == 0, out
    file = path.parent / "discarded" / "dead-1-HH-0001.jsonl"
    assert decode_reads(file.read_bytes()) == bad
    code, out = _run("list", "--all", "--spool", str(path))
    assert "discarded by sky" in out and "dead-1-HH-0001.jsonl" in out
    code, out = _run("list", "--spool", str(path))
    assert code == 0 and "no dead batches" in out


def test_spool_retry_puts_the_batch_back_and_refuses_unknown_ids(dead_spool):
    """`retry ID` puts the reads back in the queue; an unknown id is an error naming it (exit 1)."""
    path, _ = dead_spool
    code, out = _run("retry", "1", "--by", "sky", "--spool", str(path))
    assert code == 0 and "3 reads back in the queue" in out
    spool = Spool(path)
    assert spool.counts().unsent == 3
    spool.close()
    code, out = _run("retry", "7", "--spool", str(path))
    assert code == 1 and "no dead batch 7" in out
    code, out = _run("list", "--spool", str(tmp := path.parent / "missing.db"))
    assert code == 1 and str(tmp) in out.replace("\n", "")
