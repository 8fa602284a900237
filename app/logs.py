"""Logs: one JSON object per line, each with the request id of the request it belongs to.

Every request gets an id: the caller's ``X-Request-Id`` when it is a plain token (letters,
digits, ``.``, ``_``, ``-``; at most 64), else a new one; it is returned in the response's
``X-Request-Id`` and written with every log line of the request, so a partner's report and our
logs meet. Each request is logged once on ``pioneer.access`` with its route as declared (never
the path's values: tokens, codes, member references), status and time (ACCESS_LOG).
``LOG_FORMAT=json`` (the default) or ``text``; ``LOG_LEVEL`` (default INFO). Nothing
here logs request bodies or headers: personal data stays out of the logs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
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
        fields = getattr(record, "http", None)
        if fields:
            line.update(fields)
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


access = logging.getLogger("pioneer.access")


class _NoServerAccessLines(logging.Filter):
    """Drop the development server's own access lines: they carry the whole path, login
    tokens and partners' member references included. ``pioneer.access`` replaces them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return " - - [" not in str(record.msg)


def route_of() -> str:
    """The request's route as declared (``/m/login/<token>``), never the values in it: paths
    carry login tokens, redemption codes and partners' references to members. "-" for a path
    no route matched."""
    return request.url_rule.rule if request.url_rule is not None else "-"


def init_app(app: Flask) -> None:
    root = logging.getLogger()
    if not any(h.name == _HANDLER_NAME for h in root.handlers):  # once per process
        root.addHandler(_handler(app.config["LOG_FORMAT"]))
        root.setLevel(app.config["LOG_LEVEL"])
        logging.getLogger("werkzeug").addFilter(_NoServerAccessLines())

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get(HEADER, "")
        g.request_id = given if _VALID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _return_it(response):
        response.headers[HEADER] = request_id()
        if app.config["ACCESS_LOG"] and "request_started" in g:
            ms = round(1000 * (time.perf_counter() - g.pop("request_started")), 1)
            route = route_of()
            access.info(
                "%s %s %s %sms", request.method, route, response.status_code, ms,
                extra={"http": {"method": request.method, "route": route,
                                "status": response.status_code, "ms": ms}},
            )  # fmt: skip
        return response
