"""Typed errors of the store and the replicator, named after the CouchDB answers they mirror."""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error raised by mobile.sync."""

    status = 500
    error = "unknown_error"

    def __init__(self, reason: str, *, doc_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.doc_id = doc_id


class BadRequest(SyncError):
    """The document or request is malformed (CouchDB 400)."""

    status = 400
    error = "bad_request"


class NotFound(SyncError):
    """No such document, revision or attachment (CouchDB 404)."""

    status = 404
    error = "not_found"


class Conflict(SyncError):
    """A write named a stale or unknown revision (CouchDB 409)."""

    status = 409
    error = "conflict"


class MissingStub(SyncError):
    """An attachment stub refers to data the receiver does not have (CouchDB 412 missing_stub)."""

    status = 412
    error = "missing_stub"


class AuthError(SyncError):
    """The server refused the credentials or the access; retrying the same request will not help."""


class Unauthorized(AuthError):
    """401: wrong or expired credentials (pouchdb-server also answers 401 to a non-member)."""

    status = 401
    error = "unauthorized"


class Forbidden(AuthError):
    """403: authenticated but not allowed (CouchDB's answer to a non-member)."""

    status = 403
    error = "forbidden"


class DatabaseNotFound(SyncError):
    """The remote database does not exist (not provisioned yet, or deleted)."""

    status = 404
    error = "not_found"


class TransientError(SyncError):
    """The network or the server failed in a way worth retrying later: a cut, a timeout, a 5xx."""

    status = 503
    error = "transient"
