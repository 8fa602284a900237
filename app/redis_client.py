"""The one place that builds the Redis connection.

With ``REDIS_URL`` set: a real server (hiredis parses replies). Without: an in-process
stand-in (fakeredis), one per app, so the embedded default needs no server and RQ runs
jobs inline.
"""

from __future__ import annotations

import threading

import redis
from flask import Flask, current_app

_lock = threading.Lock()


def init_app(app: Flask) -> None:
    app.extensions["pioneer.redis"] = None  # built on first use: no I/O in the factory


def get_redis() -> redis.Redis:
    """The app's Redis client (thread-safe; it holds a connection pool)."""
    client = current_app.extensions.get("pioneer.redis")
    if client is None:
        with _lock:
            client = current_app.extensions.get("pioneer.redis")
            if client is None:
                client = _build(current_app.config.get("REDIS_URL"))
                current_app.extensions["pioneer.redis"] = client
    return client


def _build(url: str | None) -> redis.Redis:
    if url:
        return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def is_embedded() -> bool:
    return not current_app.config.get("REDIS_URL")
