"""Start and stop a local pouchdb-server (CouchDB-compatible) for development, tests and the demo.

    server = start_pouchdb_server(data_dir=Path("var/couch"))
    try:
        db = server.database("csfr-17")   # a RemoteDB with the admin credentials
        ...
    finally:
        server.stop()

or ``with start_pouchdb_server() as server: ...``. The server runs on a free loopback port, with its
own data folder and config file (pouchdb-server keeps admins in the config file), in its own
process group (so it outlives the shell that started it and is stopped by that group id), and gets
a server admin before this returns. `from_url` wraps an external CouchDB (``COUCHDB_URL``) in the
same `CouchServer` shape.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mobile.sync.remote import RemoteDB, split_credentials

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 20.0
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


def find_pouchdb_server() -> Path:
    """The pouchdb-server binary: ``$POUCHDB_SERVER_BIN`` or the repo's ``node_modules/.bin``."""
    explicit = os.environ.get("POUCHDB_SERVER_BIN")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(REPO_ROOT / "node_modules" / ".bin" / "pouchdb-server")
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "pouchdb-server not found; run `npm ci` in the repository root (or set POUCHDB_SERVER_BIN)"
    )


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class CouchServer:
    """A running CouchDB-compatible server: its URL (no credentials) and a server admin's credentials."""

    url: str
    username: str
    password: str
    process: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None
    log_path: Path | None = None
    _owned_dir: bool = field(default=False, repr=False)

    @property
    def auth(self) -> tuple[str, str]:
        """(username, password) for httpx."""
        return (self.username, self.password)

    @property
    def url_with_credentials(self) -> str:
        """``http://user:password@host:port`` (for tools that want one URL)."""
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{self.username}:{self.password}@{rest}"

    def client(self) -> httpx.Client:
        """An httpx client on the server root with admin credentials and timeouts."""
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=HTTP_TIMEOUT)

    def database(self, name: str, *, create: bool = True) -> RemoteDB:
        """A RemoteDB on `name` with admin credentials, created unless `create` is False."""
        db = RemoteDB(self.url, name, auth=self.auth)
        if create:
            db.create()
        return db

    def create_user(self, name: str, password: str, roles: list[str] | None = None) -> None:
        """A CouchDB user in ``_users`` (``org.couchdb.user:<name>``); replaces an existing one."""
        with self.client() as client:
            doc_id = f"org.couchdb.user:{name}"
            current = client.get(f"/_users/{doc_id}")
            doc = {"_id": doc_id, "name": name, "password": password, "roles": roles or [], "type": "user"}
            if current.status_code == 200:
                doc["_rev"] = current.json()["_rev"]
            response = client.put(f"/_users/{doc_id}", json=doc)
            response.raise_for_status()

    def set_security(self, db: str, *, members: list[str], admins: list[str] | None = None) -> None:
        """``_security`` of `db`: only these member names (and the server admin) get in."""
        body = {"admins": {"names": admins or [], "roles": []}, "members": {"names": members, "roles": []}}
        with self.client() as client:
            client.put(f"/{db}/_security", json=body).raise_for_status()

    @property
    def pid(self) -> int | None:
        """The server's process (and process group) id, when we started it."""
        return None if self.process is None else self.process.pid

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server's whole process group (SIGTERM, then SIGKILL); remove a temporary data dir."""
        if self.process is not None and self.process.poll() is None:
            pgid = self.process.pid  # started with start_new_session=True: pid == pgid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.process.wait(timeout=timeout_s)
        if self._owned_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> CouchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def from_url(url: str) -> CouchServer:
    """Wrap an external server given as ``http://admin:password@host:5984`` (``COUCHDB_URL``)."""
    bare, auth = split_credentials(url)
    if auth is None:
        raise ValueError("COUCHDB_URL must carry server admin credentials: http://user:password@host:port")
    return CouchServer(url=bare, username=auth[0], password=auth[1])


def start_pouchdb_server(
    *,
    data_dir: Path | None = None,
    in_memory: bool = False,
    port: int | None = None,
    admin: tuple[str, str] | None = None,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> CouchServer:
    """Start pouchdb-server on 127.0.0.1 and return it once it answers and has a server admin.

    `data_dir` holds the databases (leveldb), ``config.json`` and ``log.txt``; a temporary folder,
    removed on `stop`, when None. `admin` defaults to ``("admin", <random token>)``.
    """
    binary = find_pouchdb_server()
    owned = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="pouchdb-")) if data_dir is None else Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    username, password = admin or ("admin", secrets.token_urlsafe(16))
    port = port or free_port()
    args = [
        str(binary),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--config", str(folder / "config.json"),
        "--no-stdout-logs",
        "--no-color",
    ]  # fmt: skip
    args += ["--in-memory"] if in_memory else ["--dir", str(folder)]
    log_path = folder / "server.out"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            args,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    server = CouchServer(
        url=url,
        username=username,
        password=password,
        process=process,
        data_dir=folder,
        log_path=log_path,
        _owned_dir=owned,
    )
    try:
        _wait_ready(server, startup_timeout_s)
        _ensure_admin(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: CouchServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=httpx.Timeout(2.0)) as client:
        while True:
            if server.process is not None and server.process.poll() is not None:
                output = server.log_path.read_text(errors="replace")[-2000:] if server.log_path else ""
                raise RuntimeError(f"pouchdb-server exited with {server.process.returncode}:\n{output}")
            try:
                if client.get(server.url + "/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"pouchdb-server did not answer on {server.url} within {timeout_s:.0f} s")
            time.sleep(0.05)


def _ensure_admin(server: CouchServer) -> None:
    """Create the server admin (first start) or check the credentials (a data dir reused)."""
    with httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT) as anonymous:
        session = anonymous.get("/_session").json()
    if "_admin" in session.get("userCtx", {}).get("roles", []):  # admin party: no admin yet
        with httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT) as anonymous:
            anonymous.put(f"/_config/admins/{server.username}", json=server.password).raise_for_status()
    with server.client() as client:
        roles = client.get("/_session").json().get("userCtx", {}).get("roles", [])
    if "_admin" not in roles:
        raise RuntimeError(
            f"the admin credentials for {server.url} were refused (data dir reused with other ones?)"
        )


def _alive(pid: int) -> bool:
    """Whether a process with this id still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m mobile.sync.devserver [--dir var/couch] [--port N]``: run until Ctrl-C, printing the URL."""
    import argparse

    parser = argparse.ArgumentParser(description="Run a local pouchdb-server with a server admin.")
    parser.add_argument("--dir", type=Path, default=Path("var/couch"), help="data folder (default var/couch)")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default=None, help="default: a random token, printed")
    parser.add_argument("--parent-pid", type=int, default=None, help="stop when this process is gone")
    args = parser.parse_args(argv)
    admin = (args.user, args.password or secrets.token_urlsafe(16))

    def on_sigterm(_signum: int, _frame: object) -> None:
        # SIGTERM (from `timeout` or a process manager) stops the server as Ctrl-C does; once only,
        # so a second signal cannot interrupt the shutdown.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    server = start_pouchdb_server(data_dir=args.dir, port=args.port, admin=admin)
    print(f"COUCHDB_URL={server.url_with_credentials}", flush=True)
    try:
        while server.process is not None and server.process.poll() is None:
            if args.parent_pid is not None and not _alive(args.parent_pid):
                break  # whoever started us is gone (killed, crashed): do not leave an orphan server
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
