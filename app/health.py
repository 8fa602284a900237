"""Health endpoints for process managers and load balancers (no authentication, no personal
data): ``/healthz`` says the process serves; ``/readyz`` says it can do its work — the database
answers, Redis answers and a rule set is loaded — and names what is wrong when not (503)."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, jsonify
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .errors import AppError, error_response
from .extensions import db
from .redis_client import get_redis

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    from .services.rules import current_rules

    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        checks["database"] = f"unreachable ({exc.__class__.__name__})"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except RedisError as exc:
        checks["redis"] = f"unreachable ({exc.__class__.__name__})"
    try:
        checks["rules"] = f"ok (version {current_rules().version})"
    except AppError as exc:
        checks["rules"] = f"not loaded ({exc.code})"
    failing = sorted(name for name, state in checks.items() if not state.startswith("ok"))
    if failing:
        log.warning("not ready: %s", ", ".join(failing))
        return error_response("not_ready", f"not ready: {', '.join(failing)}", 503, checks)
    return jsonify(status="ready", checks=checks)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
