"""Fixtures: one app per test session on SQLite (default) or on the database named by
TEST_DATABASE_URL (PostgreSQL in CI), migrated from scratch; tables emptied after each test."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from app import create_app
from app.engine.periods import zone
from app.extensions import db

pytest_plugins = ["tests.partner_api", "tests.rules_support", "tests.topology"]

ROOT = Path(__file__).resolve().parent.parent
TZ = zone("Asia/Shanghai")


def _ensure_postgres_database(url: str) -> None:
    """Create the test database if it is missing; fail (never skip) when the server is down."""
    import psycopg

    base, _, name = url.rpartition("/")
    conninfo = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        _ensure_postgres_database(url)
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def app(database_url):
    from flask_migrate import upgrade

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "RULES_DIR": str(ROOT / "rules"),
            "PARTNER_KEY_CACHE_SECONDS": 0,
            # each request commits on its own, in the test's session (factories only flush);
            # tests/api/test_group_commit.py switches group commit on
            "INGEST_GROUP_MAX": 0,
            # a real Redis in CI (its own DB number, flushed after each test), else fakeredis
            "REDIS_URL": os.environ.get("TEST_REDIS_URL"),
        }
    )
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()  # the real migrations, not create_all: they are what production runs
    return app


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        from app.services.ingest import clear_emergency_cache

        clear_emergency_cache()
        from app.services.boards import clear_closed_cache

        clear_closed_cache()
        from app.redis_client import get_redis

        get_redis().flushdb()  # the test's Redis DB, or this app's fakeredis
        from app.services.boards.live import BUILT

        get_redis().set(BUILT, "test")  # empty boards of an empty ledger: nothing was lost
        app.extensions.pop("pioneer.boards", None)  # forget a simulated Redis failure
        app.extensions["pioneer.limiter"].reset()  # rate-limit counters (in-process storage)


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def client(app_ctx):
    return app_ctx.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def local(days_ago: float = 0, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A local time ``days_ago`` days back at hour:minute, never in the future."""
    now = dt.datetime.now(TZ)
    moment = (now - dt.timedelta(days=days_ago)).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )
    return moment if moment <= now else moment - dt.timedelta(days=1)
