"""A remote CouchDB database (Apache CouchDB 3 or pouchdb-server) as a replication peer, over httpx.

Every request carries credentials and a timeout (pouchdb-server hangs an anonymous write once an
admin exists). Answers are mapped to typed errors: 401 -> Unauthorized, 403 -> Forbidden (never
retried), connection failures, timeouts and 5xx -> TransientError (the live loop backs off).
Where CouchDB 3 and pouchdb-server answer differently (see /work/shared/SYNC-NOTES.md) both
answers are handled.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from mobile.sync.errors import (
    BadRequest,
    Conflict,
    DatabaseNotFound,
    Forbidden,
    MissingStub,
    NotFound,
    SyncError,
    TransientError,
    Unauthorized,
)
from mobile.sync.peers import Seq
from mobile.sync.store import Doc

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


COMPRESS_MIN_BYTES = 64 * 1024


def doc_path(doc_id: str) -> str:
    """URL path segment(s) for a document id; `_design/` and `_local/` keep their slash."""
    for prefix in ("_design/", "_local/"):
        if doc_id.startswith(prefix):
            return prefix + quote(doc_id[len(prefix) :], safe="")
    return quote(doc_id, safe="")


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``http://u:p@host:port/`` -> (``http://host:port``, (u, p)); the URL without credentials."""
    parsed = httpx.URL(url)
    auth = (parsed.username, parsed.password) if parsed.username else None
    bare = parsed.copy_with(username=None, password=None)
    return str(bare).rstrip("/"), auth


class RemoteDB:
    """One database on a CouchDB-compatible server."""

    def __init__(
        self,
        server_url: str,
        db: str,
        *,
        auth: tuple[str, str] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        compress_min_bytes: int | None = COMPRESS_MIN_BYTES,
    ) -> None:
        base, url_auth = split_credentials(server_url)
        # Request bodies at least this big go gzip-compressed (CouchDB 3 and pouchdb-server accept
        # ``Content-Encoding: gzip``): base64 photos shrink back to about their raw size. None: never.
        self.compress_min_bytes = compress_min_bytes
        self.server_url = base
        self.db = db
        self.auth = auth or url_auth
        self.timeout = timeout
        self._client = httpx.Client(
            base_url=f"{base}/{quote(db, safe='')}/",
            auth=self.auth,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._bulk_get_supported = True
        # Every request this object sent, as (method, path): tests and the benchmark read it.
        self.request_log: list[tuple[str, str]] = []

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> RemoteDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP plumbing ----------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; map transport failures and 401/403/5xx to typed errors."""
        self.request_log.append((method, path))
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{method} {self.db}/{path}: timed out ({exc.__class__.__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{method} {self.db}/{path}: {exc.__class__.__name__}: {exc}") from exc
        self._raise_for_auth(response, method, path)
        return response

    def _raise_for_auth(self, response: httpx.Response, method: str, path: str) -> None:
        status = response.status_code
        if status == 401:
            raise Unauthorized(f"{method} {self.db}/{path}: 401 {self._reason(response)}")
        if status == 403:
            raise Forbidden(f"{method} {self.db}/{path}: 403 {self._reason(response)}")
        if status >= 500:
            raise TransientError(f"{method} {self.db}/{path}: {status} {self._reason(response)}")

    @staticmethod
    def _reason(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text[:200]
        if isinstance(body, dict):
            return f"{body.get('error', '')}: {body.get('reason', '')}"
        return str(body)[:200]

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        status = response.status_code
        if status == 404:
            reason = self._reason(response)
            if "no_db_file" in reason or "Database does not exist" in reason:
                raise DatabaseNotFound(f"database {self.db!r} does not exist on {self.server_url}")
            raise NotFound(f"{method} {self.db}/{path}: {reason}")
        if status == 409:
            raise Conflict(f"{method} {self.db}/{path}: {self._reason(response)}")
        if status == 412:
            raise MissingStub(f"{method} {self.db}/{path}: {self._reason(response)}")
        if status >= 400:
            raise BadRequest(f"{method} {self.db}/{path}: {status} {self._reason(response)}")
        try:
            return response.json()
        except ValueError as exc:
            # A body cut mid-way by the network parses as garbage: worth retrying.
            raise TransientError(f"{method} {self.db}/{path}: unreadable JSON answer") from exc

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the decoded JSON answer (typed errors for 4xx/5xx)."""
        return self._json(self.request(method, path, **kwargs), method, path)

    # -- database-level helpers (tests, provisioning, demo) ---------------------------------------

    def peer_id(self) -> str:
        """The server URL without credentials, and the database."""
        return f"{self.server_url}/{self.db}"

    def info(self) -> Doc:
        """``GET /db``; DatabaseNotFound when it does not exist."""
        response = self.request("GET", "")
        if response.status_code == 404:
            raise DatabaseNotFound(f"database {self.db!r} does not exist on {self.server_url}")
        result: Doc = self._json(response, "GET", "")
        return result

    def exists(self) -> bool:
        """Whether the database exists."""
        try:
            self.info()
        except DatabaseNotFound:
            return False
        return True

    def create(self) -> None:
        """``PUT /db`` (412 when it already exists is fine)."""
        response = self.request("PUT", "")
        if response.status_code not in (201, 202, 412):
            self._json(response, "PUT", "")

    def destroy(self) -> None:
        """``DELETE /db`` (404 is fine)."""
        response = self.request("DELETE", "")
        if response.status_code not in (200, 202, 404):
            self._json(response, "DELETE", "")

    def get(self, doc_id: str, **params: Any) -> Doc:
        """``GET /db/id`` with query parameters (JSON-encoded where CouchDB wants JSON)."""
        query = {k: json.dumps(v) if isinstance(v, (bool, list)) else v for k, v in params.items()}
        result: Doc = self.call("GET", doc_path(doc_id), params=query)
        return result

    def put(self, doc: Mapping[str, Any]) -> str:
        """``PUT /db/id``: a normal (new_edits) write; returns the new `_rev`."""
        result = self.call("PUT", doc_path(str(doc["_id"])), json=dict(doc))
        return str(result["rev"])

    def all_docs(self, **params: Any) -> list[Doc]:
        """``GET /db/_all_docs`` rows."""
        query = {k: json.dumps(v) if isinstance(v, bool) else v for k, v in params.items()}
        rows: list[Doc] = self.call("GET", "_all_docs", params=query)["rows"]
        return rows

    # -- the Peer interface -----------------------------------------------------------------------

    def get_local(self, doc_id: str) -> Doc | None:
        """``GET /db/_local/id``; None when missing (DatabaseNotFound when the db is)."""
        path = doc_path(doc_id if doc_id.startswith("_local/") else "_local/" + doc_id)
        response = self.request("GET", path)
        if response.status_code == 404:
            reason = self._reason(response)
            if "no_db_file" in reason or "Database does not exist" in reason:
                raise DatabaseNotFound(f"database {self.db!r} does not exist on {self.server_url}")
            return None
        result: Doc = self._json(response, "GET", path)
        return result

    def put_local(self, doc: Mapping[str, Any]) -> str:
        """``PUT /db/_local/id``."""
        doc_id = str(doc["_id"])
        path = doc_path(doc_id if doc_id.startswith("_local/") else "_local/" + doc_id)
        result = self.call("PUT", path, json=dict(doc))
        return str(result.get("rev", ""))

    def changes(self, since: Seq, limit: int, doc_ids: Sequence[str] | None = None) -> tuple[list[Doc], Seq]:
        """``GET /db/_changes?style=all_docs&since=S&limit=N``; `since` is sent back verbatim."""
        params: dict[str, Any] = {"style": "all_docs", "since": since, "limit": limit}
        if doc_ids is not None:
            # GET with a query parameter: pouchdb-server crashes on filtered POST bodies.
            params |= {"filter": "_doc_ids", "doc_ids": json.dumps(list(doc_ids))}
        body = self.call("GET", "_changes", params=params)
        rows: list[Doc] = body["results"]
        last: Seq = body.get("last_seq", rows[-1]["seq"] if rows else since)
        return rows, last

    def wait_for_changes(self, since: Seq, timeout_s: float) -> bool:
        """Longpoll `_changes` with our own deadline (pouchdb-server ignores `timeout` and heartbeats forever)."""
        deadline = time.monotonic() + timeout_s
        # Heartbeats let us check the deadline while the server holds the request open.
        heartbeat_ms = int(min(max(timeout_s * 500, 100), 5000))
        params = {
            "feed": "longpoll",
            "since": since,
            "timeout": int(timeout_s * 1000),
            "heartbeat": heartbeat_ms,
        }
        chunks: list[bytes] = []
        self.request_log.append(("GET", "_changes?feed=longpoll"))
        try:
            with self._client.stream(
                "GET", "_changes", params=params, timeout=httpx.Timeout(timeout_s + 1, connect=5.0)
            ) as response:
                self._raise_for_auth(response, "GET", "_changes")
                if response.status_code >= 400:
                    response.read()
                    self._json(response, "GET", "_changes")
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        return False
        except httpx.TimeoutException:
            return False
        except httpx.TransportError as exc:
            raise TransientError(f"longpoll _changes: {exc.__class__.__name__}: {exc}") from exc
        try:
            body = json.loads(b"".join(chunks))
        except ValueError as exc:
            raise TransientError("longpoll _changes: unreadable answer") from exc
        return bool(body.get("results"))

    def revs_diff(self, revs: Mapping[str, Sequence[str]]) -> dict[str, Doc]:
        """``POST /db/_revs_diff`` (pouchdb-server gives no possible_ancestors; that only costs bytes)."""
        if not revs:
            return {}
        result: dict[str, Doc] = self.call("POST", "_revs_diff", json={k: list(v) for k, v in revs.items()})
        return result

    def bulk_get(self, requests: Sequence[Mapping[str, Any]]) -> tuple[list[Doc], list[Doc]]:
        """``POST /db/_bulk_get?revs=true&latest=true&attachments=true``, falling back to ``open_revs``."""
        if not requests:
            return [], []
        if self._bulk_get_supported:
            response = self.request(
                "POST",
                "_bulk_get",
                params={"revs": "true", "latest": "true", "attachments": "true"},
                json={"docs": [dict(r) for r in requests]},
            )
            if response.status_code in (400, 404, 405, 501):
                self._bulk_get_supported = False
            else:
                body = self._json(response, "POST", "_bulk_get")
                return self._split_bulk_get(body["results"])
        return self._open_revs(requests)

    @staticmethod
    def _split_bulk_get(results: Sequence[Mapping[str, Any]]) -> tuple[list[Doc], list[Doc]]:
        docs: list[Doc] = []
        errors: list[Doc] = []
        for result in results:
            for entry in result.get("docs", []):
                if "ok" in entry:
                    docs.append(entry["ok"])
                elif "error" in entry:  # CouchDB
                    errors.append(dict(entry["error"]))
                else:  # pouchdb-server: {"missing": rev}
                    errors.append({"id": result.get("id"), "rev": entry.get("missing"), "error": "not_found"})
        return docs, errors

    def _open_revs(self, requests: Sequence[Mapping[str, Any]]) -> tuple[list[Doc], list[Doc]]:
        """The pre-`_bulk_get` way: one ``GET /db/id?open_revs=[...]`` per document."""
        by_id: dict[str, list[str]] = {}
        for req in requests:
            by_id.setdefault(str(req["id"]), []).append(str(req["rev"]))
        docs: list[Doc] = []
        errors: list[Doc] = []
        for doc_id, revs in by_id.items():
            entries = self.call(
                "GET",
                doc_path(doc_id),
                params={
                    "open_revs": json.dumps(revs),
                    "revs": "true",
                    "latest": "true",
                    "attachments": "true",
                },
                headers={"Accept": "application/json"},
            )
            for entry in entries:
                if "ok" in entry:
                    docs.append(entry["ok"])
                else:
                    errors.append({"id": doc_id, "rev": entry.get("missing"), "error": "not_found"})
        return docs, errors

    def open_revs_all(self, doc_id: str) -> list[Doc]:
        """Every leaf of `doc_id` with ``_revisions`` and attachment data (none when it does not exist)."""
        response = self.request(
            "GET",
            doc_path(doc_id),
            params={"open_revs": "all", "revs": "true", "attachments": "true"},
            headers={"Accept": "application/json"},
        )
        try:
            entries = self._json(response, "GET", doc_path(doc_id))
        except NotFound:  # never on the server (DatabaseNotFound still raises)
            return []
        return [dict(entry["ok"]) for entry in entries if isinstance(entry, dict) and "ok" in entry]

    def bulk_docs(self, docs: Sequence[Mapping[str, Any]]) -> list[Doc]:
        """``POST /db/_bulk_docs`` with ``new_edits: false``; only failures come back.

        CouchDB 3 answers ``[]`` when everything was written (a missing entry means success);
        older servers list every document, so entries without ``error`` are dropped here.
        """
        if not docs:
            return []
        payload = json.dumps({"docs": list(docs), "new_edits": False}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.compress_min_bytes is not None and len(payload) >= self.compress_min_bytes:
            response = self.request(
                "POST",
                "_bulk_docs",
                content=gzip.compress(payload, 6),
                headers=headers | {"Content-Encoding": "gzip"},
            )
            if response.status_code == 415:  # a server that refuses compressed bodies: never again
                self.compress_min_bytes = None
                response = self.request("POST", "_bulk_docs", content=payload, headers=headers)
        else:
            response = self.request("POST", "_bulk_docs", content=payload, headers=headers)
        # Some server versions list validation failures in a 417 answer.
        body = response.json() if response.status_code == 417 else self._json(response, "POST", "_bulk_docs")
        if not isinstance(body, list):
            raise SyncError(f"_bulk_docs answered {str(body)[:200]}")
        return [dict(entry) for entry in body if isinstance(entry, dict) and "error" in entry]
