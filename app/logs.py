"""Logs: one JSON object per line, each with the request id of the request it belongs to.

Every request gets an id: the caller's ``X-Request-Id`` when it is a plain token (letters,
digits, ``.``, ``_``, ``-``; at most 64), else a new one; it is returned in the response's
``X-Request-Id`` and written with every log line of the request, so a partner's report and our
logs meet. ``LOG_FORMAT=json`` (the default) or ``text``; ``LOG_LEVEL`` (default INFO). Nothing
here logs request bodies or headers: personal data stays out of the logs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid

from flask import Flask, g, has_request_context, request

HEADER = "X-Request-Id"
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HANDLER_NAME = "pioneer"


def request_id() -> str:
    """The current request's id ("-" outside a request)."""
    if has_request_context():
        return g.get("request_id", "-")
    return "-"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _handler(fmt: str) -> logging.Handler:
    handler = logging.StreamHandler()
    handler.name = _HANDLER_NAME
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    return handler


def init_app(app: Flask) -> None:
    root = logging.getLogger()
    if not any(h.name == _HANDLER_NAME for h in root.handlers):  # once per process
        root.addHandler(_handler(app.config["LOG_FORMAT"]))
        root.setLevel(app.config["LOG_LEVEL"])

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get(HEADER, "")
        g.request_id = given if _VALID.match(given) else uuid.uuid4().hex

    @app.after_request
    def _return_it(response):
        response.headers[HEADER] = request_id()
        return response
