"""The one place that builds the Redis connection.

With ``REDIS_URL`` set: a real server (hiredis parses replies). Without: an in-process
stand-in (fakeredis), one per app, so the embedded default needs no server and RQ runs
jobs inline; it starts empty in each process, so its leaderboards are rebuilt from the ledger
when the process first uses it.
"""

from __future__ import annotations

import logging
import threading

import redis
from flask import Flask, current_app

_lock = threading.RLock()  # the restore below runs while it is held
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    app.extensions["pioneer.redis"] = None  # built on first use: no I/O in the factory
    app.before_request(_ready)


def _ready() -> None:
    """Embedded default: build (and so restore) the stand-in before the first request's
    handler takes a database connection or lock, so the restore never waits for them."""
    if current_app.extensions.get("pioneer.redis") is None and is_embedded():
        get_redis()


def get_redis() -> redis.Redis:
    """The app's Redis client (thread-safe; it holds a connection pool)."""
    client = current_app.extensions.get("pioneer.redis")
    if client is None:
        with _lock:
            client = current_app.extensions.get("pioneer.redis")
            if client is None:
                client = _build(current_app.config.get("REDIS_URL"))
                current_app.extensions["pioneer.redis"] = client
                if is_embedded():
                    _restore(client)
    return client


def _restore(client: redis.Redis) -> None:
    """The stand-in starts empty in every process: rebuild the leaderboards from the ledger
    (the source of truth) before anything reads them. Small on the embedded default."""
    from sqlalchemy import inspect

    from .extensions import db
    from .services.boards.rebuild import rebuild_boards

    try:
        if not inspect(db.engine).has_table("ledger_entries"):
            return  # not migrated yet
        rebuild_boards(client, current_app.config["APP_TIMEZONE"], check_drift=False)
    except Exception:  # the boards stay empty; the ledger is untouched
        log.exception("could not rebuild the leaderboards of the in-process Redis stand-in")


def _build(url: str | None) -> redis.Redis:
    if url:
        return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def is_embedded() -> bool:
    return not current_app.config.get("REDIS_URL")
