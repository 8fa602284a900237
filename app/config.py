"""Configuration: defaults, then environment variables, then what the caller passes.

Every variable is listed in the README's configuration table.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

DEFAULTS: dict[str, object] = {
    "DATABASE_URL": None,  # None: a SQLite file in the instance folder
    "REDIS_URL": None,  # None: an in-process Redis stand-in (fakeredis), jobs run inline
    "RULES_DIR": "rules",
    "RULES_POLL_SECONDS": 5,  # how often a process looks for a newly published rules version
    "APP_TIMEZONE": "Asia/Shanghai",
    "SECRET_KEY": "dev-only-change-me",
    "PHONE_HASH_KEY": None,  # None: derived from SECRET_KEY
    "EVENT_HORIZON_DAYS": 90,  # events older than this are refused
    "EVENT_FUTURE_SECONDS": 300,  # events further in the future are refused
    "BATCH_LIMIT": 1000,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "PARTNER_KEY_CACHE_SECONDS": 10,
    # partners' request signing secrets are HMACs of their key ids under this key
    "PARTNER_SIGNING_KEY": None,  # None: derived from SECRET_KEY
    "SIGNATURE_WINDOW_SECONDS": 300,  # a signed request's timestamp may be this far off
    # rate limits (flask-limiter; in Redis with REDIS_URL, else in the process): partners'
    # API calls per partner, login links and console logins per client address
    "RATELIMIT_ENABLED": True,
    "RATE_LIMIT_PARTNER": "1000/second",
    "RATE_LIMIT_LOGIN": "20/minute;100/hour",
    "EMERGENCY_CACHE_SECONDS": 5,
    # single events that arrive together in one process share a transaction (group commit);
    # at most this many per transaction. 0 or 1: each request has its own transaction.
    "INGEST_GROUP_MAX": 64,
    "INGEST_WAIT_SECONDS": 30,  # a request waiting for its group answers 503 after this
    # a redemption not picked up in this many hours expires and is refunded (unless the
    # reward says its own pickup_hours)
    "REDEMPTION_PICKUP_HOURS": 72,
    # the rider pages: a login link works once, for this many seconds; the session it starts
    # is a signed cookie (HttpOnly, SameSite=Lax; Secure when SESSION_COOKIE_SECURE is set)
    "LOGIN_LINK_SECONDS": 300,
    "SESSION_DAYS": 7,
    "SESSION_COOKIE_NAME": "pp_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    # a recalculation after a publish runs as this many jobs (one per worker, each a share of
    # the members) and then rebuilds the boards; 1: one job that keeps the boards live
    "RECALCULATE_PARTS": 1,
    "LOG_FORMAT": "json",  # one JSON object per line with the request id; or "text"
    "LOG_LEVEL": "INFO",
    # a running job's heartbeat: a job whose worker died is found abandoned after this, and
    # retried at the next registry clean-up, which each worker runs this often
    "JOB_HEARTBEAT_SECONDS": 60,
    "WORKER_MAINTENANCE_SECONDS": 60,
    # a board rebuild holds a lease it renews; one whose worker died lets go after this
    "REBUILD_LEASE_SECONDS": 60,
    "ACCESS_LOG": True,  # one line per request (method, path without tokens, status, ms)
    "METRICS_TOKEN": None,  # None: /metrics answers only requests from this machine
}

ENVIRONMENT = (
    "DATABASE_URL",
    "REDIS_URL",
    "RULES_DIR",
    "RULES_POLL_SECONDS",
    "APP_TIMEZONE",
    "SECRET_KEY",
    "PHONE_HASH_KEY",
    "PARTNER_SIGNING_KEY",
    "SIGNATURE_WINDOW_SECONDS",
    "RATE_LIMIT_PARTNER",
    "RATE_LIMIT_LOGIN",
    "RATELIMIT_ENABLED",
    "ACCESS_LOG",
    "METRICS_TOKEN",
    "JOB_HEARTBEAT_SECONDS",
    "WORKER_MAINTENANCE_SECONDS",
    "REBUILD_LEASE_SECONDS",
    "EVENT_HORIZON_DAYS",
    "EVENT_FUTURE_SECONDS",
    "BATCH_LIMIT",
    "INGEST_GROUP_MAX",
    "REDEMPTION_PICKUP_HOURS",
    "LOGIN_LINK_SECONDS",
    "SESSION_DAYS",
    "SESSION_COOKIE_SECURE",
    "RECALCULATE_PARTS",
    "LOG_FORMAT",
    "LOG_LEVEL",
)
_INTEGERS = {
    "RULES_POLL_SECONDS",
    "EVENT_HORIZON_DAYS",
    "EVENT_FUTURE_SECONDS",
    "BATCH_LIMIT",
    "INGEST_GROUP_MAX",
    "REDEMPTION_PICKUP_HOURS",
    "LOGIN_LINK_SECONDS",
    "SESSION_DAYS",
    "RECALCULATE_PARTS",
    "SIGNATURE_WINDOW_SECONDS",
    "JOB_HEARTBEAT_SECONDS",
    "WORKER_MAINTENANCE_SECONDS",
    "REBUILD_LEASE_SECONDS",
}


def load(config: dict, overrides: dict | None, instance_path: str) -> None:
    """Fill a Flask ``config`` from defaults, the environment and ``overrides``, in that order,
    then derive what Flask-SQLAlchemy needs."""
    config.update(DEFAULTS)
    for key in ENVIRONMENT:
        value = os.environ.get(key)
        if value:
            config[key] = int(value) if key in _INTEGERS else value
    for flag in ("SESSION_COOKIE_SECURE", "RATELIMIT_ENABLED", "ACCESS_LOG"):
        if isinstance(config[flag], str):
            config[flag] = config[flag].lower() in ("1", "true", "yes", "on")
    if overrides:
        config.update(overrides)
    config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(days=int(config["SESSION_DAYS"]))
    url = config["DATABASE_URL"] or f"sqlite:///{Path(instance_path) / 'pioneer.db'}"
    config["SQLALCHEMY_DATABASE_URI"] = database_uri(url)
    config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(config["SQLALCHEMY_DATABASE_URI"])
    )


def database_uri(url: str) -> str:
    """Use the psycopg 3 driver for PostgreSQL URLs however they are written."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_options(uri: str) -> dict:
    """Connection settings per database. Both keep SQL parameters (names, references) out of
    exception messages, so an error that is logged carries no personal data."""
    if uri.startswith("sqlite"):
        return {
            "connect_args": {"timeout": 30, "check_same_thread": False},
            "hide_parameters": True,
        }
    return {
        "hide_parameters": True,
        "pool_size": 10,
        "max_overflow": 20,
        # no ping before each checkout (two round trips with psycopg: BEGIN and SELECT 1);
        # after a database restart the first request on each stale connection answers 503
        # and the pool reconnects (the partner's retry with the same event id is safe)
        "pool_pre_ping": False,
        "pool_recycle": 3600,
        # psycopg prepares a statement once it has run 5 times on a connection; planning the
        # ingest statements afresh each time (custom plans) costs more than running them
        "connect_args": {"options": "-c plan_cache_mode=force_generic_plan"},
    }
