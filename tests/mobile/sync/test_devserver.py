"""The pouchdb-server launcher the tests, the server side and `make demo` share."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from mobile.sync.devserver import from_url, start_pouchdb_server

pytestmark = pytest.mark.couchdb


def test_start_admin_and_stop_by_process_group(tmp_path: Path):
    """It starts on a free loopback port with its own data dir and admin, and stop() ends its process group."""
    server = start_pouchdb_server(data_dir=tmp_path / "couch")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert (tmp_path / "couch" / "config.json").exists()
        with server.client() as client:
            assert "_admin" in client.get("/_session").json()["userCtx"]["roles"]
        with httpx.Client(timeout=5) as anonymous:  # an admin exists: no more admin party
            assert "_admin" not in anonymous.get(server.url + "/_session").json()["userCtx"]["roles"]
        pid = server.pid
        assert pid is not None and os.getpgid(pid) == pid  # its own process group
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_reusing_a_data_dir_keeps_the_admin(tmp_path: Path):
    """A second start on the same folder keeps the databases and accepts the same admin (kept in config.json)."""
    first = start_pouchdb_server(data_dir=tmp_path / "couch", admin=("boss", "pw-1"))
    with first.database("kept") as kept:
        kept.put({"_id": "order:1"})
    first.stop()
    second = start_pouchdb_server(data_dir=tmp_path / "couch", admin=("boss", "pw-1"))
    try:
        with second.database("kept", create=False) as kept:
            assert kept.get("order:1")["_id"] == "order:1"
    finally:
        second.stop()


def test_from_url_needs_credentials():
    """COUCHDB_URL must carry admin credentials; they are split off the URL."""
    server = from_url("http://admin:secret@couch.example:5984/")
    assert (server.url, server.auth) == ("http://couch.example:5984", ("admin", "secret"))
    with pytest.raises(ValueError, match="credentials"):
        from_url("http://couch.example:5984")
