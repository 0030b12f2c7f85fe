"""Replication throughput: mobile.sync against PouchDB's own replicator, same pouchdb-server, same run.

Pull: 10,000 order documents from a server database into an empty store (ours: a SQLite file;
PouchDB: a memory database, and server -> server). Push: 10,000 result documents from a store into an
empty server database. Documents per second, median of `REPEATS` runs, at batch sizes 100
(PouchDB's default) and 500 (ours). Run with `make bench-sync`.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.report import write_section
from mobile.sync import Replicator, Store
from mobile.sync.devserver import CouchServer, start_pouchdb_server
from mobile.sync.peers import LocalPeer
from mobile.sync.remote import RemoteDB

N_DOCS = 10_000
REPEATS = 3
BATCH_SIZES = (100, 500)
POUCH_SCRIPT = Path(__file__).with_name("sync_pouchdb.js")


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


def pouch(server: CouchServer, *args: str) -> float:
    """Run PouchDB's replicator in node; return documents per second."""
    cmd = ["node", str(POUCH_SCRIPT), args[0], server.url, server.username, server.password, *args[1:]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout
    result = json.loads(out.strip().splitlines()[-1])
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
    try:
        rows = measure(server, workdir)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    body = render(rows)
    print(body)
    write_section("sync", "Sync", body)


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

    plan: list[tuple[str, str, Callable[[int], float]]] = [
        ("pull 10,000 orders", "mobile.sync -> SQLite file store", ours_pull),
        ("pull 10,000 orders", "PouchDB -> memory db", pouch_pull),
        ("pull 10,000 orders", "PouchDB server -> server", pouch_r2r),
        ("push 10,000 results", "mobile.sync SQLite file store ->", ours_push),
        ("push 10,000 results", "PouchDB memory db ->", pouch_push),
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
