"""A small real HTTP server speaking the station's side of the handhelds contract (docs/device-bridge.md).

It stands in for the lead's `server/handhelds` feature, which this worktree does not have: it records
uploaded reads idempotently by read key, serves routes per device, checks the bearer token, and can be
stopped and started again on the same port to play a server outage.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from contracts.handheld import HandheldUpload, RouteRecord, UploadResult, encode_lines


class HandheldServerStub:
    """Records uploads by idempotency key; serves routes by device id."""

    def __init__(self, token: str = "station-token") -> None:
        self.token = token
        self.reads: dict[str, dict[str, object]] = {}  # idempotency key -> read JSON
        self.duplicates = 0
        self.posts = 0
        self.idempotency_keys: list[str] = []
        self.routes: dict[str, list[RouteRecord]] = {}
        self.route_gets = 0
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (on the same port as before, after a stop)."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, code: int, body: object) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {stub.token}":
                    self._reply(401, {"detail": "bad station token"})
                    return False
                return True

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                if self.path != "/api/handhelds/uploads" or not self.headers.get("Idempotency-Key"):
                    self._reply(400, {"detail": "POST /api/handhelds/uploads with an Idempotency-Key"})
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                upload = HandheldUpload.model_validate_json(body)
                accepted = duplicates = 0
                with stub.lock:
                    stub.posts += 1
                    stub.idempotency_keys.append(self.headers["Idempotency-Key"])
                    for read in upload.reads:
                        if read.idempotency_key in stub.reads:
                            duplicates += 1
                        else:
                            stub.reads[read.idempotency_key] = read.model_dump(mode="json")
                            accepted += 1
                    stub.duplicates += duplicates
                self._reply(201, UploadResult(accepted=accepted, duplicates=duplicates).model_dump())

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                parts = self.path.strip("/").split("/")
                if len(parts) == 5 and parts[:3] == ["api", "handhelds", "devices"] and parts[4] == "routes":
                    with stub.lock:
                        stub.route_gets += 1
                        routes = stub.routes.get(parts[3], [])
                    self._reply(200, [r.model_dump(mode="json") for r in routes])
                else:
                    self._reply(404, {"detail": "not found"})

        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (the outage)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()

    def routes_blob(self, device_id: str) -> bytes:
        """The JSON Lines batch the station should load into `device_id`."""
        return encode_lines(sorted(self.routes.get(device_id, []), key=lambda r: (r.route_id, r.sequence)))
