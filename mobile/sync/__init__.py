"""Offline sync for the tablet: a CouchDB-like SQLite store and a CouchDB replication client (no kivy)."""

from mobile.sync.errors import (
    AuthError,
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
from mobile.sync.peers import LocalPeer, Peer
from mobile.sync.remote import RemoteDB
from mobile.sync.replicator import ReplicationResult, Replicator, Sync, SyncResult
from mobile.sync.store import ConflictPolicy, ConflictRecord, KeepWinner, Store, SyncProblem

__all__ = [
    "AuthError",
    "BadRequest",
    "Conflict",
    "ConflictPolicy",
    "ConflictRecord",
    "DatabaseNotFound",
    "Forbidden",
    "KeepWinner",
    "LocalPeer",
    "MissingStub",
    "NotFound",
    "Peer",
    "RemoteDB",
    "ReplicationResult",
    "Replicator",
    "Store",
    "Sync",
    "SyncError",
    "SyncProblem",
    "SyncResult",
    "TransientError",
    "Unauthorized",
]
