"""FakeCouch: a CouchDB 3 imitation behind httpx.MockTransport, for what pouchdb-server cannot show.

It is a fake, named as one: a `Store` answers the replication endpoints the way CouchDB 3 does
where pouchdb-server differs. Sequences are opaque strings (``"<n>-g1AAAA<random>"``) that sort
neither by text nor by number, a `since` the fake did not hand out is a 400 (so seq arithmetic
fails loudly), pages may replay their previous row (as a cluster does), `_bulk_docs` answers only
failures, and `_bulk_get` can be switched off to exercise the ``open_revs`` fallback. With `drop`
set, `_bulk_docs` silently stores nothing of the documents it matches and still answers ``201 []``
(what pouchdb-server 4.2.0 did under validation before the project's patch).
"""

from __future__ import annotations

import gzip
import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx

from mobile.sync.store import Store


class FakeCouch:
    """One fake database named `db` on ``http://fake.couch``."""

    url = "http://fake.couch"

    def __init__(self, db: str = "csfr-fake", *, replay_rows: bool = True, bulk_get: bool = True) -> None:
        self.db = db
        self.store = Store()
        self.replay_rows = replay_rows
        self.bulk_get_supported = bulk_get
        self.tokens: dict[str, int] = {"0": 0}
        self.requests: list[tuple[str, str]] = []
        self.drop: Callable[[dict[str, Any]], bool] | None = None
        self.dropped: list[tuple[str, str]] = []

    def transport(self) -> httpx.MockTransport:
        """The transport to hand to RemoteDB."""
        return httpx.MockTransport(self.handle)

    def _token(self, seq: int) -> str:
        token = f"{seq}-g1AAAA{secrets.token_urlsafe(12)}"
        self.tokens[token] = seq
        return token

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route one request."""
        path = request.url.raw_path.decode().split("?")[0]
        parts = [unquote(p) for p in path.strip("/").split("/")]
        self.requests.append((request.method, "/".join(parts[1:])))
        if parts[0] != self.db:
            return httpx.Response(404, json={"error": "not_found", "reason": "Database does not exist."})
        rest = parts[1:]
        params = request.url.params
        content = request.content
        if request.headers.get("content-encoding") == "gzip":  # CouchDB 3 inflates gzip bodies
            content = gzip.decompress(content)
        body: Any = json.loads(content) if content else None
        if not rest:
            return httpx.Response(200, json={"db_name": self.db, "doc_count": self.store.doc_count()})
        if rest[0] == "_local":
            doc_id = "_local/" + "/".join(rest[1:])
            if request.method == "GET":
                doc = self.store.get_local(doc_id)
                if doc is None:
                    return httpx.Response(404, json={"error": "not_found", "reason": "missing"})
                return httpx.Response(200, json=doc)
            rev = self.store.put_local({**body, "_id": doc_id})
            return httpx.Response(201, json={"ok": True, "id": doc_id, "rev": rev})
        if rest[0] == "_changes":
            since = params.get("since", "0")
            if since not in self.tokens:
                return httpx.Response(
                    400, json={"error": "bad_request", "reason": f"malformed sequence {since!r}"}
                )
            start = self.tokens[since]
            # A cluster may send a row again after a restart: clients must apply changes idempotently.
            from_seq = start - 1 if self.replay_rows and start > 0 else start
            limit = int(params.get("limit", 1000)) + (from_seq != start)
            rows, _last = self.store.changes(from_seq, limit=limit)
            if all(row["seq"] <= start for row in rows):
                rows = []  # only the replayed row: nothing new
            for row in rows:
                row["seq"] = self._token(row["seq"])
            last = rows[-1]["seq"] if rows else since
            return httpx.Response(200, json={"results": rows, "last_seq": last, "pending": 0})
        if rest[0] == "_revs_diff":
            return httpx.Response(200, json=self.store.revs_diff(body))
        if rest[0] == "_bulk_get":
            if not self.bulk_get_supported:
                return httpx.Response(404, json={"error": "not_found", "reason": "missing"})
            return httpx.Response(200, json={"results": self.store.bulk_get(body["docs"])})
        if rest[0] == "_bulk_docs":
            docs = body["docs"]
            if self.drop is not None:
                self.dropped += [(d["_id"], d["_rev"]) for d in docs if self.drop(d)]
                docs = [d for d in docs if not self.drop(d)]
            result = self.store.bulk_docs_replicated(docs)
            return httpx.Response(201, json=result.errors)  # CouchDB 3: only the failures
        doc_id = "/".join(rest)
        if request.method == "GET" and "open_revs" in params:
            revs = json.loads(params["open_revs"])
            answer = []
            for result in self.store.bulk_get([{"id": doc_id, "rev": r} for r in revs]):
                for entry in result["docs"]:
                    answer.append(
                        {"ok": entry["ok"]} if "ok" in entry else {"missing": entry["error"]["rev"]}
                    )
            return httpx.Response(200, json=answer)
        return httpx.Response(405, json={"error": "method_not_allowed", "reason": f"{request.method} {path}"})
