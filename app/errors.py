"""The domain's exceptions and the one JSON error shape of the API.

Every API error is ``{"error": {"code", "message", "details"}}`` with a 4xx status; nothing
reaches a client as a stack trace.
"""

from __future__ import annotations

import logging

import psycopg
from flask import Flask, current_app, jsonify, request
from marshmallow import Schema, fields
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    """A refusal with a code a program can act on and a message a person can read."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: object = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code:
            self.code = code


class Invalid(AppError):
    status, code = 422, "invalid"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class Unavailable(AppError):
    status, code = 503, "unavailable"


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"description": "What a program can act on"})
    message = fields.String(required=True, metadata={"description": "What a person can read"})
    details = fields.Raw(metadata={"description": "Which fields, values or limits"})


class ErrorOut(Schema):
    """The one error shape of the API."""

    error = fields.Nested(ErrorDetail, required=True)


def error_body(code: str, message: str, details: object = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(code: str, message: str, status: int, details: object = None):
    response = jsonify(error_body(code, message, details))
    response.status_code = status
    return response


# Werkzeug's HTTP errors, renamed for the API
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def handle_http_exception(exc: HTTPException):
    """HTTP errors raised by Flask, Werkzeug or webargs, in the API's shape."""
    status = exc.code or 500
    details = {}
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and "messages" in data:  # webargs validation errors
        messages = data["messages"]
        details = messages.get("json", messages) if isinstance(messages, dict) else messages
    message = {
        413: "request body is larger than the limit",
        422: "the request does not fit the schema",
    }.get(status, exc.description or exc.name)
    response = error_response(_HTTP_CODES.get(status, "error"), message, status, details)
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):  # what the status needs said
        value = exc.get_headers() and dict(exc.get_headers()).get(name)
        if value:
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError):
        page = page_for(request.path)
        if page:  # a page under /m: the readable page for its status, never JSON
            from werkzeug.exceptions import HTTPException as _Http

            error = _Http(exc.message)
            error.code = exc.status
            return page(error)
        return error_response(exc.code, exc.message, exc.status, exc.details)

    def _database_down(exc: Exception):
        log.error("database unavailable: %s", exc.__class__.__name__)
        return error_response("database_unavailable", "the database is not reachable", 503)

    # SQLAlchemy's wrappers, and psycopg's own from code that holds a raw connection (ingest)
    for kind in (OperationalError, InterfaceError, psycopg.OperationalError,
                 psycopg.InterfaceError):  # fmt: skip
        app.register_error_handler(kind, _database_down)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if request.path.startswith("/api/"):
            return handle_http_exception(exc)
        page = page_for(request.path)
        return page(exc) if page else exc

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # pragma: no cover - handled above
            return _http(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        page = page_for(request.path)
        if page:
            from werkzeug.exceptions import InternalServerError

            return page(InternalServerError())
        return error_response("internal_error", "an unexpected error occurred", 500)


def page_for(path: str):
    """The error page of the pages a path belongs to (rider pages, console), or None for the
    API and anything else: components register theirs in ``app.extensions["pioneer.error_pages"]``
    as {path prefix: function(HTTPException) -> response}."""
    for prefix, page in current_app.extensions.get("pioneer.error_pages", {}).items():
        if path == prefix.rstrip("/") or path.startswith(prefix):
            return page
    return None
