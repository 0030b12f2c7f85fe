"""Photos that survive a poor link: bounded requests, results before photos, nothing lost or duplicated
under cuts. FieldLink (a shaping proxy on loopback) between the tablet and the dev server.
"""

from __future__ import annotations

import gzip
import json
import random
import time

import httpx
import pytest

from mobile.background import SyncRunner
from mobile.core.sync_state import SyncState
from mobile.sync import RemoteDB, Replicator, Store, Sync, SyncError
from mobile.sync.devserver import CouchServer
from mobile.sync.peers import LocalPeer
from mobile.sync.store import attachment_digest
from tests.mobile.sync.fakecouch import FakeCouch
from tests.mobile.sync.fieldlink import FieldLink


def photo(seed: int, size: int) -> bytes:
    """Incompressible bytes with a JPEG header, like a camera's photo."""
    return b"\xff\xd8\xff\xe0" + random.Random(seed).randbytes(size - 4)


def field_day(store: Store, results: int, photo_bytes: int) -> dict[str, bytes]:
    """Events, results with two photos each; returns attachment bytes by (doc id/name)."""
    photos: dict[str, bytes] = {}
    for i in range(results):
        store.put({"_id": f"event:{i}:on_site", "doc_type": "event", "kind": "on_site", "order_id": str(i)})
        doc = {"_id": f"result:{i}:r", "doc_type": "result", "order_id": str(i), "outcome": "completed"}
        atts = {}
        for k in range(2):
            data = photo(i * 10 + k, photo_bytes)
            photos[f"result:{i}:r/p{k}.jpg"] = data
            atts[f"p{k}.jpg"] = {"content_type": "image/jpeg", "data": data}
        store.put({**doc, "_attachments": atts})
    return photos


def bulk_docs_bodies(fake: FakeCouch, log: list[bytes]) -> httpx.MockTransport:
    """A transport that records every `_bulk_docs` body before the fake answers it."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/_bulk_docs"):
            content = request.content
            if request.headers.get("content-encoding") == "gzip":
                content = gzip.decompress(content)
            log.append(content)
        return fake.handle(request)

    return httpx.MockTransport(handle)


def test_events_and_photo_less_documents_go_first_and_photo_requests_are_bounded():
    """In one batch the documents without photos travel in the first request; photos follow in requests
    of at most `max_request_bytes` of attachment data (one photo-heavy document alone when larger)."""
    fake = FakeCouch()
    log: list[bytes] = []
    remote = RemoteDB(fake.url, fake.db, auth=("u", "p"), transport=bulk_docs_bodies(fake, log))
    tablet = Store()
    field_day(tablet, results=5, photo_bytes=50_000)
    result = Replicator(LocalPeer(tablet), remote, max_request_bytes=150_000).run()
    assert result.docs_written == 10 and not result.unconfirmed
    requests = [json.loads(body)["docs"] for body in log]
    assert {d["_id"].split(":")[0] for d in requests[0]} == {"event"}
    assert all(all("_attachments" in d for d in docs) for docs in requests[1:])
    assert [len(docs) for docs in requests[1:]] == [1, 1, 1, 1, 1]  # 2 x 67 KB of base64 each: one fits
    assert fake.store.get_attachment("result:3:r", "p1.jpg") == photo(31, 50_000)


def test_photos_last_sends_the_whole_backlog_of_light_documents_before_any_photo():
    """With `photos_last` (metered links) every event and photo-less document lands before a photo is sent."""
    fake = FakeCouch()
    log: list[bytes] = []
    remote = RemoteDB(fake.url, fake.db, auth=("u", "p"), transport=bulk_docs_bodies(fake, log))
    tablet = Store()
    field_day(tablet, results=4, photo_bytes=20_000)
    tablet.put({"_id": "result:9:r", "doc_type": "result", "outcome": "unable_to_complete"})
    result = Sync(tablet, remote, photos_last=True, batch_size=3).run_once()
    requests = [json.loads(body)["docs"] for body in log]
    first_photo = next(i for i, docs in enumerate(requests) if any("_attachments" in d for d in docs))
    before = {d["_id"] for docs in requests[:first_photo] for d in docs}
    assert before == {f"event:{i}:on_site" for i in range(4)} | {"result:9:r"}
    assert result.problems == [] and fake.store.doc_count() == 9


def test_gzip_request_bodies_carry_base64_photos_at_about_their_raw_size():
    """Large `_bulk_docs` bodies go gzip-compressed: the base64 of a photo costs about its raw bytes."""
    fake = FakeCouch()
    sizes: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/_bulk_docs"):
            sizes.append(len(request.content))
        return fake.handle(request)

    remote = RemoteDB(fake.url, fake.db, auth=("u", "p"), transport=httpx.MockTransport(handle))
    tablet = Store()
    field_day(tablet, results=1, photo_bytes=300_000)
    Replicator(LocalPeer(tablet), remote).run()
    assert sizes[-1] < 2 * 300_000 * 1.03  # raw would be 2 x 300 KB; plain base64 JSON 2 x 400 KB


@pytest.mark.couchdb
def test_field_link_paces_uploads_by_its_bandwidth(couch_server: CouchServer, remote_db: RemoteDB):
    """The shaping proxy holds an upload to its bandwidth and adds its latency (the benchmark relies on it)."""
    host, port = couch_server.url.rsplit("//", 1)[1].split(":")
    link = FieldLink((host, int(port)), rtt_s=0.1, up_bps=2_000_000, down_bps=10_000_000)
    with link, RemoteDB(link.url, remote_db.db, auth=couch_server.auth, compress_min_bytes=None) as via:
        via.info()
        started = time.monotonic()
        via.put({"_id": "big", "blob": "x" * 250_000})
        elapsed = time.monotonic() - started
    assert link.bytes_up >= 250_000
    assert 0.9 <= elapsed <= 3.0, elapsed  # 250 KB at 2 Mbit/s = 1.0 s, plus a round trip


@pytest.mark.couchdb
@pytest.mark.slow
def test_photos_survive_cuts_without_loss_duplicates_or_restarting_the_batch(
    couch_server: CouchServer, remote_db: RemoteDB
):
    """Results with photos pushed over a 4 Mbit/s link that is cut every 1.5 s: every result arrives once
    with its photos intact, and what was uploaded is far less than restarting the batch at each cut."""
    host, port = couch_server.url.rsplit("//", 1)[1].split(":")
    tablet = Store()
    photos = field_day(tablet, results=12, photo_bytes=120_000)
    payload = sum(len(p) for p in photos.values())
    link = FieldLink(
        (host, int(port)), rtt_s=0.05, up_bps=4_000_000, down_bps=8_000_000, cut_every_s=1.5, down_s=0.3
    )
    with link, RemoteDB(link.url, remote_db.db, auth=couch_server.auth) as via:
        sync = Sync(tablet, via, max_request_bytes=300_000)
        deadline = time.monotonic() + 120
        failures = 0
        while time.monotonic() < deadline:
            try:
                result = sync.run_once()
            except SyncError:  # a cut: the next run resumes
                failures += 1
                time.sleep(link.down_s)
                continue
            if result.push.docs_written == 0 and not result.problems:
                break
    assert link.cuts >= 2 and failures >= 1, (link.cuts, failures)
    for key, data in photos.items():
        doc_id, name = key.split("/")
        stored = remote_db.get(doc_id, conflicts=True)
        assert "_conflicts" not in stored and stored["_rev"].startswith("1-")
        assert stored["_attachments"][name]["digest"] == attachment_digest(data)
    rows, _ = remote_db.changes(0, 1000)
    assert len(rows) == 24 and all(len(r["changes"]) == 1 for r in rows)
    assert link.bytes_up < 2.0 * payload, (link.bytes_up, payload)  # a restart per cut would be several x


def test_the_app_setting_for_metered_links_reaches_the_sync_round():
    """SyncRunner asks `photos_last` each round; when it says so, photos go after the light documents."""
    fake = FakeCouch()
    log: list[bytes] = []
    tablet = Store()
    field_day(tablet, results=2, photo_bytes=10_000)
    runner = SyncRunner(
        tablet,
        lambda: RemoteDB(fake.url, fake.db, auth=("u", "p"), transport=bulk_docs_bodies(fake, log)),
        SyncState(),
        photos_last=lambda: True,
    )
    assert runner.run_round()
    first = json.loads(log[0])["docs"]
    assert {d["_id"] for d in first} == {"event:0:on_site", "event:1:on_site"}
    assert fake.store.doc_count() == 4
