"""Replication: mobile.sync against PouchDB's own replicator (7.3.1 and 9.0.0), same pouchdb-server, same run.

Throughput on loopback. Pull: 10,000 order documents from a server database into an empty store
(ours: a SQLite file; PouchDB 7.3.1: a memory database, and server -> server; PouchDB 9: LevelDB).
Push: 10,000 result documents from a store into an empty server database. Documents per second,
median of `REPEATS` runs, at batch sizes 100 (PouchDB's default) and 500 (ours).

A CSFR's day over a field link (tests/mobile/sync/fieldlink.py: 300 ms round trips, 1 Mbit/s up,
5 Mbit/s down, the link cut on a schedule): 60 orders down, then 60 results with 2 photos of 300 KB
up. Wall time against the lower bound (payload bytes / bandwidth + round trips x latency), for
mobile.sync and PouchDB 9 over their own links at the same time. Run with `make bench-sync`.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.report import write_section
from mobile.sync import Replicator, Store, Sync, SyncError
from mobile.sync.devserver import CouchServer, start_pouchdb_server
from mobile.sync.peers import LocalPeer
from mobile.sync.remote import RemoteDB
from tests.mobile.sync.fieldlink import FieldLink

N_DOCS = 10_000
REPEATS = 3
BATCH_SIZES = (100, 500)
POUCH_SCRIPT = Path(__file__).with_name("sync_pouchdb.js")
# A CSFR's day over a field link.
DAY_ORDERS = 60
DAY_RESULTS = 60
PHOTO_BYTES = 300_000
LINK = {"rtt_s": 0.3, "up_bps": 1_000_000, "down_bps": 5_000_000}
CUT_EVERY_S = 60.0
CUT_DOWN_S = 5.0
DAY_DEADLINE_S = 1800


def order_doc(i: int) -> dict[str, Any]:
    """An order document of about 320 bytes of JSON, shaped like contracts.couch.OrderDoc."""
    return {
        "_id": f"order:{i:06d}",
        "doc_type": "order",
        "order_id": str(i),
        "order_type": "reread",
        "status": "dispatched",
        "priority": "reread",
        "csfr_id": "csfr-7",
        "sequence": i % 40,
        "planned_arrival_at": "2026-11-23T10:00:00Z",
        "service_point": {"service_point_id": f"sp{i}", "address": f"{i} Curbstop Lane, Springfield"},
        "meters": [{"meter_id": f"m{i}", "dials": 6, "unit": "gal"}],
        "access_notes": "gate code 1234",
        "version": 1,
    }


def result_doc(i: int) -> dict[str, Any]:
    """A result document; keep in step with resultDoc() in sync_pouchdb.js."""
    return {
        "_id": f"result:{i:06d}:{'b' * 32}",
        "doc_type": "result",
        "order_id": str(i),
        "outcome": "completed",
        "csfr_id": "csfr-7",
        "device_id": "tablet-7",
        "completed_at": "2026-11-23T10:00:00Z",
        "readings": [{"meter_id": f"m{i}", "value": i * 10.5, "unit": "gal"}],
        "notes": "n" * 60,
    }


def pouch_run(
    url: str, server: CouchServer, *args: str, version: str = "7", timeout: float = 600
) -> dict[str, Any]:
    """Run `sync_pouchdb.js` with PouchDB `version` (7 or 9) against `url`; its JSON answer."""
    cmd = ["node", str(POUCH_SCRIPT), args[0], url, server.username, server.password, *args[1:]]
    env = os.environ | {"POUCHDB": version}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"PouchDB {version} {args[0]} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def pouch(server: CouchServer, *args: str, version: str = "7") -> float:
    """Run PouchDB's replicator in node; return documents per second."""
    result = pouch_run(server.url, server, *args, version=version)
    if result["docs_written"] != N_DOCS:
        raise RuntimeError(f"PouchDB wrote {result['docs_written']} documents, expected {N_DOCS}: {args}")
    return N_DOCS / float(result["seconds"])


def median_rate(run: Callable[[int], float], batch: int) -> float:
    """Median documents-per-second of REPEATS runs at this batch size."""
    return statistics.median(run(batch) for _ in range(REPEATS))


def main() -> None:
    """Measure, print and write the Sync section of docs/benchmarks.md."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    server = start_pouchdb_server(in_memory=True, data_dir=workdir / "couch")
    load_before = os.getloadavg()
    try:
        rows = measure(server, workdir)
        days = field_day(server, workdir)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    body = render(rows) + "\n" + render_days(days, load_before, load_after)
    print(body)
    write_section("sync", "Sync", body)


# -- a CSFR's day over a field link ---------------------------------------------------------------


def day_photo(seed: int) -> bytes:
    """Incompressible bytes with a JPEG header: a camera photo of PHOTO_BYTES."""
    return b"\xff\xd8\xff\xe0" + random.Random(seed).randbytes(PHOTO_BYTES - 4)


def day_database(server: CouchServer) -> RemoteDB:
    """A fresh CSFR database holding the day's orders."""
    db = fresh_db(server, "fieldday")
    db.call("POST", "_bulk_docs", json={"docs": [order_doc(i) for i in range(DAY_ORDERS)]})
    return db


def day_payload() -> tuple[int, int]:
    """(bytes up, bytes down) the day must move at least: results and raw photos up, orders down."""
    up = sum(len(json.dumps(result_doc(i))) + 2 * PHOTO_BYTES for i in range(DAY_RESULTS))
    down = sum(len(json.dumps(order_doc(i))) for i in range(DAY_ORDERS))
    return up, down


def lower_bound_s(round_trips: int = 2) -> float:
    """Payload / bandwidth each way plus the round trips no protocol avoids (ask, then send)."""
    up, down = day_payload()
    return up * 8 / LINK["up_bps"] + down * 8 / LINK["down_bps"] + round_trips * LINK["rtt_s"]


def new_link(server: CouchServer) -> FieldLink:
    """A field link to the server, cut every CUT_EVERY_S for CUT_DOWN_S."""
    host, port = server.url.rsplit("//", 1)[1].split(":")
    return FieldLink(
        (host, int(port)),
        rtt_s=LINK["rtt_s"],
        up_bps=LINK["up_bps"],
        down_bps=LINK["down_bps"],
        cut_every_s=CUT_EVERY_S,
        down_s=CUT_DOWN_S,
        seed=7,
    )


def verify_day(db: RemoteDB) -> None:
    """Every result is on the server once, with both photos at full size; raise otherwise."""
    rows, _ = db.changes(0, 10_000)
    results = [r for r in rows if r["id"].startswith("result:")]
    if len(results) != DAY_RESULTS or any(len(r["changes"]) != 1 for r in results):
        raise RuntimeError(
            f"field day: {len(results)} results on the server, expected {DAY_RESULTS} once each"
        )
    for row in results:
        atts = db.get(row["id"])["_attachments"]
        if sorted(atts) != ["p0.jpg", "p1.jpg"] or any(a["length"] != PHOTO_BYTES for a in atts.values()):
            raise RuntimeError(f"field day: {row['id']} arrived without its photos: {atts}")


def ours_day(server: CouchServer, workdir: Path, out: dict[str, Any]) -> None:
    """mobile.sync as the app runs it: Sync.run_once, after a failure wait 1 s and run again."""
    db = day_database(server)
    store = Store(workdir / "day-tablet.sqlite")
    for i in range(DAY_RESULTS):
        atts = {f"p{k}.jpg": {"content_type": "image/jpeg", "data": day_photo(i * 2 + k)} for k in (0, 1)}
        store.put({**result_doc(i), "_attachments": atts})
    link = new_link(server)
    failures = 0
    with link, RemoteDB(link.url, db.db, auth=server.auth) as remote:
        sync = Sync(store, remote)
        started = time.perf_counter()
        while True:
            try:
                result = sync.run_once()
            except SyncError:
                failures += 1
                time.sleep(1.0)
                continue
            if not result.problems:
                break
        seconds = time.perf_counter() - started
    if len(store.all_docs(prefix="order:")) != DAY_ORDERS:
        raise RuntimeError("field day: the tablet did not get every order")
    verify_day(db)
    store.close()
    db.destroy()
    out.update(seconds=seconds, failures=failures, link=link)


def pouch9_day(server: CouchServer, out: dict[str, Any]) -> None:
    """PouchDB 9 in node through its own link: replicate down, then up, retrying after 1 s."""
    db = day_database(server)
    link = new_link(server)
    with link:
        result = pouch_run(
            link.url,
            server,
            "fieldday",
            db.db,
            "1",  # batch_size 1: its default (100) puts 48 MB in one request, which no cut-free minute carries
            str(DAY_RESULTS),
            str(PHOTO_BYTES),
            str(DAY_DEADLINE_S),
            version="9",
            timeout=DAY_DEADLINE_S + 120,
        )
    verify_day(db)
    db.destroy()
    out.update(seconds=float(result["seconds"]), failures=int(result["failures"]), link=link)


def field_day(server: CouchServer, workdir: Path) -> dict[str, dict[str, Any]]:
    """Both clients' day, at the same time, each over its own link to the same server."""
    days: dict[str, dict[str, Any]] = {"mobile.sync": {}, "PouchDB 9.0.0": {}}
    errors: list[BaseException] = []

    def guarded(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=guarded, args=(ours_day, server, workdir, days["mobile.sync"])),
        threading.Thread(target=guarded, args=(pouch9_day, server, days["PouchDB 9.0.0"])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return days


def render_days(
    days: dict[str, dict[str, Any]], load_before: tuple[float, ...], load_after: tuple[float, ...]
) -> str:
    """The field-day table and how it was measured."""
    up, down = day_payload()
    bound = lower_bound_s()
    lines = [
        f"**A CSFR's day over a field link.** {DAY_ORDERS} orders down, then {DAY_RESULTS} results with 2 "
        f"photos of {PHOTO_BYTES // 1000} KB (incompressible, like JPEG) up: {up / 1e6:.1f} MB up, "
        f"{down / 1e3:.0f} KB down. Link: `tests/mobile/sync/fieldlink.py` on loopback, "
        f"{LINK['rtt_s'] * 1000:.0f} ms round trips, {LINK['up_bps'] / 1e6:.0f} Mbit/s up, "
        f"{LINK['down_bps'] / 1e6:.0f} Mbit/s down, cut every {CUT_EVERY_S:.0f} s for {CUT_DOWN_S:.0f} s "
        "(open connections reset, new ones refused). Lower bound = payload / bandwidth each way + 2 round "
        f"trips = {bound:.1f} s (outages not included). Both clients ran at the same time, each over its "
        "own link, against the same pouchdb-server; each retries 1 s after a failure. mobile.sync: "
        "`Sync.run_once` with its defaults (photos in requests of at most 1 MiB, gzip bodies); PouchDB "
        "9.0.0 in node (LevelDB): the pull with its defaults, the push with `batch_size` 1 (its default, 100, "
        "puts all 60 results, 48 MB of base64, in one request: 6.4 minutes at 1 Mbit/s, longer than any "
        "cut-free stretch of this link).",
        "",
        "| client | wall time | / lower bound | outages in the run | failed attempts | bytes up | bytes down |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, day in days.items():
        link: FieldLink = day["link"]
        lines.append(
            f"| {name} | {day['seconds']:.1f} s | {day['seconds'] / bound:.2f}x | {link.cuts} x {CUT_DOWN_S:.0f} s "
            f"| {day['failures']} | {link.bytes_up / 1e6:.1f} MB | {link.bytes_down / 1e6:.2f} MB |"
        )
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; shared "
        f"with other work while measured (load average {load_before[0]:.1f} before, {load_after[0]:.1f} after).",
    ]
    return "\n".join(lines) + "\n"


def fresh_db(server: CouchServer, prefix: str) -> RemoteDB:
    """A new empty database."""
    return server.database(f"{prefix}-{uuid.uuid4().hex[:10]}")


def measure(server: CouchServer, workdir: Path) -> list[tuple[str, str, int, float]]:
    """Every (operation, implementation, batch size, docs/s) row."""
    source = server.database("bench-orders")
    for start in range(0, N_DOCS, 1000):
        source.call("POST", "_bulk_docs", json={"docs": [order_doc(i) for i in range(start, start + 1000)]})
    results_store_path = workdir / "results.sqlite"
    results_store = Store(results_store_path)
    for i in range(N_DOCS):
        results_store.put(result_doc(i))
    results_store.close()

    rows: list[tuple[str, str, int, float]] = []

    def ours_pull(batch: int) -> float:
        path = workdir / f"pull-{uuid.uuid4().hex}.sqlite"
        store = Store(path)
        result = Replicator(source, LocalPeer(store), batch_size=batch).run()
        store.close()
        path.unlink()
        assert result.docs_written == N_DOCS, result
        return N_DOCS / result.elapsed_s

    def ours_push(batch: int) -> float:
        path = workdir / f"push-{uuid.uuid4().hex}.sqlite"
        shutil.copy(results_store_path, path)
        store = Store(path)  # a copy of the same tablet: same uuid, but each target is a new database
        target = fresh_db(server, "bench-push")
        result = Replicator(LocalPeer(store), target, batch_size=batch).run()
        store.close()
        target.destroy()
        assert result.docs_written == N_DOCS, result
        return N_DOCS / result.elapsed_s

    def pouch_r2r(batch: int) -> float:
        target = fresh_db(server, "bench-r2r")
        rate = pouch(server, "r2r", source.db, target.db, str(batch))
        target.destroy()
        return rate

    def pouch_push(batch: int) -> float:
        target = fresh_db(server, "bench-ppush")
        rate = pouch(server, "push", target.db, str(batch), str(N_DOCS))
        target.destroy()
        return rate

    def pouch_pull(batch: int) -> float:
        return pouch(server, "pull", source.db, str(batch))

    def pouch9_pull(batch: int) -> float:
        return pouch(server, "pull", source.db, str(batch), version="9")

    def pouch9_push(batch: int) -> float:
        target = fresh_db(server, "bench-p9push")
        rate = pouch(server, "push", target.db, str(batch), str(N_DOCS), version="9")
        target.destroy()
        return rate

    plan: list[tuple[str, str, Callable[[int], float]]] = [
        ("pull 10,000 orders", "mobile.sync -> SQLite file store", ours_pull),
        ("pull 10,000 orders", "PouchDB 7.3.1 -> memory db", pouch_pull),
        ("pull 10,000 orders", "PouchDB 9.0.0 -> LevelDB", pouch9_pull),
        ("pull 10,000 orders", "PouchDB 7.3.1 server -> server", pouch_r2r),
        ("push 10,000 results", "mobile.sync SQLite file store ->", ours_push),
        ("push 10,000 results", "PouchDB 7.3.1 memory db ->", pouch_push),
        ("push 10,000 results", "PouchDB 9.0.0 LevelDB ->", pouch9_push),
    ]
    for operation, implementation, run in plan:
        for batch in BATCH_SIZES:
            rows.append((operation, implementation, batch, median_rate(run, batch)))

    # a re-run with nothing to do
    store = Store(workdir / "noop.sqlite")
    replicator = Replicator(source, LocalPeer(store), batch_size=500)
    replicator.run()
    started = time.perf_counter()
    noop = replicator.run()
    noop_s = time.perf_counter() - started
    assert noop.docs_written == 0 and noop.checkpoints_written == 0
    rows.append(("re-run with nothing to do", "mobile.sync (seconds, not docs/s)", 500, noop_s))
    store.close()
    source.close()
    return rows


def render(rows: list[tuple[str, str, int, float]]) -> str:
    """Markdown table plus how to read it."""
    order_bytes = statistics.mean(len(json.dumps(order_doc(i))) for i in range(N_DOCS))
    result_bytes = statistics.mean(len(json.dumps(result_doc(i))) for i in range(N_DOCS))
    lines = [
        f"pouchdb-server 4.2.0 (PouchDB 7.3.1, `--in-memory`) on loopback; {N_DOCS:,} orders of "
        f"{order_bytes:.0f} bytes and {N_DOCS:,} results of {result_bytes:.0f} bytes (JSON); median of "
        f"{REPEATS} runs, each into a new empty store or database. PouchDB's replicator is pouchdb-core "
        "7.3.1 with the http and memory adapters that pouchdb-server installs, run by "
        "`benchmarks/sync_pouchdb.js` against the same server in the same run. mobile.sync writes a "
        "SQLite file (WAL) and fetches up to 2 batches ahead of its writer.",
        "",
        "| operation | implementation | batch | documents per second |",
        "|---|---|---:|---:|",
    ]
    for operation, impl, batch, value in rows:
        shown = f"{value:.3f} s" if operation.startswith("re-run") else f"{value:,.0f}"
        lines.append(f"| {operation} | {impl} | {batch} | {shown} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
