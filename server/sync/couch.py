"""A small CouchDB admin client for the server side of sync.

Why httpx and not the `couchdb` package (CouchDB-Python 1.2) that the design card names: every call
here needs an explicit timeout (pouchdb-server can hold an anonymous request or a longpoll open
indefinitely, see SYNC-NOTES), typed errors for 401/403/404/409, and a transport that tests can swap;
CouchDB-Python gives none of these cleanly, its `_changes` iterator cannot be bounded, and it is
unmaintained since 2018. What we call is a handful of plain JSON endpoints (`PUT /db`, `_security`,
`_users`, design documents, `_changes`, `_bulk_docs`, documents), so a thin client over httpx is
simpler and safer. The dependency was dropped from pyproject for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

DESIGN_ID = "_design/curbstop"
# Runs in CouchDB on every write that is not a server admin's: a tablet may create results and
# events (and delete its own conflict losers), and nothing else. For a replicated write
# (`new_edits: false`) CouchDB 3 passes as `oldDoc` the nearest stored ancestor on the incoming
# revision's own path, or null for a new branch; pouchdb-server does the same only with the
# project's patch (patches/pouchdb-validation+4.2.0.patch, docs/sync.md).
VALIDATE_DOC_UPDATE = """function (newDoc, oldDoc, userCtx, secObj) {
  if (userCtx.roles.indexOf('_admin') !== -1) { return; }
  var id = newDoc._id || '';
  if (id.indexOf('result:') === 0 || id.indexOf('event:') === 0) {
    if (oldDoc && !oldDoc._deleted && !newDoc._deleted) {
      throw({forbidden: 'results and events are written once and never edited: ' + id});
    }
    return;
  }
  throw({forbidden: 'a tablet may create only result: and event: documents; ' + id + ' belongs to the server'});
}"""

# Each tablet reports its open sync problems here (mobile.sync.replicator.REPORT_ID): a `_local`
# document, so it neither replicates nor passes validation.
SYNC_REPORT_ID = "_local/curbstop-sync-report"


class CouchError(RuntimeError):
    """CouchDB answered with an error; `status` and `reason` say which."""

    def __init__(self, status: int, reason: str, what: str) -> None:
        super().__init__(f"CouchDB {status} {reason} for {what}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class CouchConfig:
    """Where CouchDB is and the server admin's credentials."""

    url: str  # without credentials
    username: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> CouchConfig:
        """Parse `http://admin:password@host:5984` (COUCHDB_URL)."""
        parts = urlsplit(url)
        if not parts.username or parts.password is None:
            raise ValueError(
                "COUCHDB_URL must carry the server admin's credentials: http://user:password@host:port"
            )
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return cls(
            url=urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")),
            username=parts.username,
            password=parts.password,
        )

    def public_url(self) -> str:
        """The URL tablets replicate with (no credentials)."""
        return self.url


class CouchAdmin:
    """Admin calls on one CouchDB server."""

    def __init__(
        self, config: CouchConfig, *, timeout_s: float = 15.0, transport: httpx.BaseTransport | None = None
    ):
        self.config = config
        self.client = httpx.Client(
            base_url=config.url,
            auth=(config.username, config.password),
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202), **kw: Any) -> Any:
        resp = self.client.request(method, path, **kw)
        if resp.status_code not in ok:
            try:
                body = resp.json()
                reason = f"{body.get('error', '')}: {body.get('reason', '')}"
            except ValueError:
                reason = resp.text[:200]
            raise CouchError(resp.status_code, reason, f"{method} {path}")
        return resp.json() if resp.content else None

    @staticmethod
    def _doc_path(db: str, doc_id: str) -> str:
        return f"/{db}/{quote(doc_id, safe='')}" if not doc_id.startswith("_design/") else f"/{db}/{doc_id}"

    def ensure_db(self, db: str) -> None:
        """Create `db` unless it exists."""
        self._call("PUT", f"/{db}", ok=(201, 202, 412))

    def set_security(self, db: str, *, members: list[str]) -> None:
        """Only these users (and server admins) may read or write `db`."""
        body = {"admins": {"names": [], "roles": []}, "members": {"names": members, "roles": []}}
        self._call("PUT", f"/{db}/_security", json=body)

    def put_user(self, name: str, password: str) -> None:
        """Create or update a CouchDB user's password."""
        self.ensure_db("_users")
        doc_id = f"org.couchdb.user:{name}"
        current = self.get_doc("_users", doc_id)
        body = {"_id": doc_id, "name": name, "password": password, "roles": [], "type": "user"}
        if current is not None:
            body["_rev"] = current["_rev"]
        self._call("PUT", self._doc_path("_users", doc_id), json=body)

    def get_doc(self, db: str, doc_id: str) -> dict[str, Any] | None:
        """The document, or None when it does not exist."""
        resp = self.client.get(self._doc_path(db, doc_id))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise CouchError(resp.status_code, resp.text[:200], f"GET {db}/{doc_id}")
        return dict(resp.json())

    def get_attachment(self, db: str, doc_id: str, name: str) -> tuple[bytes, str]:
        """An attachment's bytes and content type (CouchError when it is not there)."""
        resp = self.client.get(f"{self._doc_path(db, doc_id)}/{quote(name, safe='')}")
        if resp.status_code != 200:
            raise CouchError(resp.status_code, resp.text[:200], f"GET {db}/{doc_id}/{name}")
        return resp.content, resp.headers.get("content-type", "application/octet-stream")

    def put_doc(self, db: str, doc: dict[str, Any]) -> str:
        """Write a document (with `_rev` when updating); return its new revision."""
        result = self._call("PUT", self._doc_path(db, doc["_id"]), json=doc)
        return str(result["rev"])

    def changes(self, db: str, *, since: str | None, limit: int) -> tuple[list[dict[str, Any]], str]:
        """One page of `_changes` with the documents; `since` is opaque and passed back verbatim."""
        params: dict[str, Any] = {"include_docs": "true", "style": "all_docs", "limit": limit}
        if since is not None:
            params["since"] = since
        body = self._call("GET", f"/{db}/_changes", params=params)
        return list(body["results"]), str(body["last_seq"])

    def ensure_design(self, db: str) -> None:
        """Install (or update) `_design/curbstop` with the project's `validate_doc_update`."""
        design = self.get_doc(db, DESIGN_ID)
        if design is not None and design.get("validate_doc_update") == VALIDATE_DOC_UPDATE:
            return
        body: dict[str, Any] = {
            "_id": DESIGN_ID,
            "validate_doc_update": VALIDATE_DOC_UPDATE,
            "language": "javascript",
        }
        if design is not None:
            body["_rev"] = design["_rev"]
        self.put_doc(db, body)

    def sync_report(self, db: str) -> dict[str, Any]:
        """Each device's open sync problems in `db`, as its tablet last reported them ({} if none)."""
        resp = self.client.get(f"/{db}/{SYNC_REPORT_ID}")
        if resp.status_code == 404:
            return {}
        if resp.status_code != 200:
            raise CouchError(resp.status_code, resp.text[:200], f"GET {db}/{SYNC_REPORT_ID}")
        devices = resp.json().get("devices", {})
        return dict(devices) if isinstance(devices, dict) else {}
