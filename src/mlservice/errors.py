"""One error shape for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError as DatabaseDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlservice.ml.errors import BundleError, ConfigError, DataError, LimitExceeded, MLError

log = logging.getLogger(__name__)


class AppError(Exception):
    """An error a client can act on; subclasses fix the status and code."""

    status_code = 400
    code = "bad_request"
    default_headers: dict[str, str] | None = None

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers if headers is not None else self.default_headers
        if code:
            self.code = code


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    default_headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class DatabaseBusyError(AppError):
    """The database stayed locked through every retry; the caller may try again later. Raised by
    ``mlservice.db``; defined here so the database layer imports the error shape, not the reverse."""

    status_code = 503
    code = "database_busy"
    default_headers = {"Retry-After": "1"}


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(AppError):
    status_code = 422
    code = "invalid_input"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """What every 4xx/5xx answer carries (``error_body``)."""

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "Bad request, or a body that cannot be parsed",
    401: "Not signed in: no token, or an invalid, expired or revoked one",
    403: "Not allowed for this caller",
    404: "No such object, or not one the caller may see",
    409: "Conflicts with the current state of the object",
    413: "The body or the data is over a limit",
    415: "Unsupported Content-Type",
    422: "Invalid input",
    429: "Too many requests: see Retry-After",
}


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a router or route: these statuses answer with ``ErrorBody``."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in status_codes}


def error_response(
    status_code: int, code: str, message: str, details: Any = None, headers: Any = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status_code, headers=headers)


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


def _describe_validation(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    for issue in errors:
        location = ".".join(str(part) for part in issue.get("loc", ()) if part != "body")
        details.append({"field": location or "body", "message": issue.get("msg", "invalid")})
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})"
    return message, details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _describe_validation(list(exc.errors()))
        return error_response(422, "invalid_input", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"{request.url.path} is not an endpoint of this API"
        elif exc.status_code == 400 and message == "There was an error parsing the body":
            message = ("the body could not be parsed: send one JSON object, UTF-8 encoded, "
                       "nested at most a few hundred levels deep")
        elif exc.status_code == 400 and message == "Invalid multipart data.":
            message = ("the multipart body could not be parsed: check its boundary, and keep each part's "
                       "headers under 4 KB (a file name of a few thousand characters is too long)")
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(MLError)
    async def _ml_error(_request: Request, exc: MLError) -> JSONResponse:
        status = 413 if isinstance(exc, LimitExceeded) else 422 if isinstance(exc, (DataError, ConfigError)) else 400
        if isinstance(exc, BundleError):
            log.error("model bundle problem: %s", exc)
            status = 500
        return error_response(status, exc.code, exc.message, exc.details or None)

    @app.exception_handler(DatabaseDataError)
    async def _bad_value(request: Request, exc: DatabaseDataError) -> JSONResponse:
        # PostgreSQL refuses what SQLite stores: NUL characters in text, integers beyond 64 bits.
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        if "NUL" in str(exc.orig) or "Unicode escape" in str(exc.orig):
            message = "text cannot contain the NUL character (\\x00)"
        else:
            message = "a value is out of the range the database can store"
        return error_response(422, "invalid_value", message)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # e.g. an id beyond 64 bits, which SQLite's driver cannot even bind
        log.warning("number out of range on %s %s: %s", request.method, request.url.path, exc)
        return error_response(422, "invalid_value", "a number is out of the range this service can handle")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Internal server error; see the server log")
