"""Errors a person can act on: every failure is JSON with a code, a sentence, and the fields at fault."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("curbstop.errors")


class ApiError(Exception):
    """An error with an HTTP status, a machine code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers


def not_found(what: str, ident: object) -> ApiError:
    """A 404 naming the thing that was not found."""
    return ApiError(404, "not_found", f"{what} {ident} does not exist")


def forbidden(message: str) -> ApiError:
    """A 403 saying what the caller may not do."""
    return ApiError(403, "forbidden", message)


def conflict(message: str, code: str = "conflict") -> ApiError:
    """A 409 with the reason."""
    return ApiError(409, code, message)


def _body(
    code: str, message: str, fields: list[dict[str, str]] | None = None, request: Request | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "fields": fields or []}
    if request is not None:
        error["request_id"] = request_id_of(request)
    return {"error": error}


REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_of(request: Request) -> str:
    """The request's id (from RequestId below; a fresh one if the middleware did not run)."""
    rid = getattr(request.state, "request_id", None)
    if not rid:
        rid = uuid.uuid4().hex
        request.state.request_id = rid
    return str(rid)


class RequestId:
    """Pure ASGI middleware: every request gets an id (a sane incoming X-Request-ID is kept), echoed in the
    response header and in every error body, and logged with a server error, so a report can be traced."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        rid = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault(REQUEST_ID_HEADER, rid)
            await send(message)

        await self.app(scope, receive, with_id)


# SQLSTATE classes (PostgreSQL) and SQLite's message prefixes, each with a sentence a person can act on.
_INTEGRITY = (
    ("23505", "UNIQUE", "a record with the same {what} already exists"),
    (
        "23503",
        "FOREIGN KEY",
        "it refers to a record that does not exist, or one that other records still use",
    ),
    ("23502", "NOT NULL", "a required value{of} is missing"),
    ("23514", "CHECK", "a value{of} is outside what is allowed"),
)


def integrity_message(exc: IntegrityError) -> tuple[str, list[dict[str, str]]]:
    """A human sentence (and the fields, when known) for a constraint violation; never the constraint name."""
    orig = exc.orig
    sqlstate = str(getattr(orig, "sqlstate", "") or "")
    text = str(orig) if orig is not None else ""
    columns: list[str] = []
    column = getattr(getattr(orig, "diag", None), "column_name", None)  # psycopg: NOT NULL names it
    if column:
        columns = [str(column)]
    elif m := re.search(r"Key \(([^)]*)\)=", text):  # PostgreSQL: Key (username)=(...) already exists
        columns = [c.strip() for c in m.group(1).split(",")]
    elif m := re.search(
        r"constraint failed: ([\w., ]+)", text
    ):  # SQLite: UNIQUE constraint failed: users.username
        columns = [c.strip().rsplit(".", 1)[-1] for c in m.group(1).split(",")]
    for state, prefix, template in _INTEGRITY:
        if sqlstate == state or text.startswith(prefix):
            what = " and ".join(columns) if columns else "values"
            message = template.format(what=what, of=f" ({', '.join(columns)})" if columns else "")
            break
    else:
        message = "it conflicts with stored data"
    fields = [{"field": c, "message": message} for c in columns]
    return f"the change was not saved: {message}", fields


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "window_end") -> "window_end"; ("query", "page") -> "query.page"
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the JSON error handlers on `app`."""

    @app.exception_handler(ApiError)
    async def _api_error(req: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            _body(exc.code, exc.message, exc.fields, req), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": _field_name(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(
            _body("invalid_request", f"the request is not valid: {summary}", fields, req), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            406: "not_acceptable",
            413: "too_large",
            415: "unsupported_media_type",
            429: "too_many_attempts",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            _body(code, str(exc.detail), None, req),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(StaleDataError)
    async def _stale(req: Request, _exc: StaleDataError) -> JSONResponse:
        return JSONResponse(
            _body(
                "stale_version",
                "someone else changed this record first; reload it and apply your change again",
                None,
                req,
            ),
            status_code=409,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(req: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error [%s]: %s", request_id_of(req), str(exc.orig).splitlines()[0:1])
        message, fields = integrity_message(exc)
        return JSONResponse(_body("integrity_error", message, fields, req), 409)

    @app.exception_handler(Exception)
    async def _server_error(req: Request, exc: Exception) -> JSONResponse:
        # The trace goes to the log under the request id; the caller gets the id and no detail.
        rid = request_id_of(req)
        log.error("server error [%s] %s %s", rid, req.method, req.url.path, exc_info=exc)
        message = f"something went wrong on the server; the error was logged as {rid}"
        return JSONResponse(
            _body("server_error", message, None, req), status_code=500, headers={REQUEST_ID_HEADER: rid}
        )

    app.add_middleware(RequestId)
