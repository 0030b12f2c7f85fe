"""Fixtures for mobile tests: a real pouchdb-server for the session (or COUCHDB_URL), a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from mobile.sync.devserver import CouchServer, from_url, start_pouchdb_server
from mobile.sync.remote import RemoteDB


@pytest.fixture(scope="session")
def couch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CouchServer]:
    """A CouchDB-compatible server with admin credentials: `COUCHDB_URL` if set, else pouchdb-server."""
    external = os.environ.get("COUCHDB_URL")
    if external:
        yield from_url(external)
        return
    server = start_pouchdb_server(data_dir=tmp_path_factory.mktemp("pouchdb"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def remote_db(couch_server: CouchServer) -> Iterator[RemoteDB]:
    """A new, empty database (``csfr-test-<hex>``) with admin credentials, deleted afterwards."""
    db = couch_server.database(f"csfr-test-{uuid.uuid4().hex[:12]}")
    try:
        yield db
    finally:
        db.destroy()
        db.close()


@pytest.fixture
def closing() -> Iterator[Callable[[RemoteDB], RemoteDB]]:
    """Register RemoteDBs a test opens; they are closed at teardown even when the test fails."""
    opened: list[RemoteDB] = []

    def register(db: RemoteDB) -> RemoteDB:
        opened.append(db)
        return db

    yield register
    for db in opened:
        db.close()
