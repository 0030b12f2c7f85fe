"""Errors a person can act on: every failure is JSON with a code, a sentence, and the fields at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException


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


def _body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or []}}


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "window_end") -> "window_end"; ("query", "page") -> "query.page"
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the JSON error handlers on `app`."""

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            _body(exc.code, exc.message, exc.fields), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": _field_name(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(
            _body("invalid_request", f"the request is not valid: {summary}", fields), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            _body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(StaleDataError)
    async def _stale(_req: Request, _exc: StaleDataError) -> JSONResponse:
        return JSONResponse(
            _body(
                "stale_version",
                "someone else changed this record first; reload it and apply your change again",
            ),
            status_code=409,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_req: Request, exc: IntegrityError) -> JSONResponse:
        detail = str(exc.orig).splitlines()[0] if exc.orig else "constraint violated"
        return JSONResponse(_body("integrity_error", f"the change conflicts with stored data: {detail}"), 409)
