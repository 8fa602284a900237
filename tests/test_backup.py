"""Backups: the PostgreSQL database is all there is to back up. A `pg_dump` of it, restored
into a new database next to an empty Redis, gives the same ledger (verified), the same
balances and — after `boards rebuild` — the same leaderboards, line for line. Runs on
PostgreSQL (TEST_DATABASE_URL); the embedded default's backup is a copy of its SQLite file."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import Member
from app.redis_client import get_redis
from app.services.audit import verify_ledger
from app.services.boards.rebuild import rebuild_boards

from .partner_api import hazard, shift

RESTORED_REDIS_DB = 15


def _boards(client) -> dict[str, list]:
    """Every leaderboard (member boards and boards of children) with its lines."""
    keys = sorted(k.decode() for p in ("lb:{*", "lbo:{*") for k in client.scan_iter(match=p))
    return {k: client.zrange(k, 0, -1, withscores=True) for k in keys if "~" not in k}


@pytest.fixture
def restored_url(app):
    url = app.config["DATABASE_URL"]
    if not url.startswith("postgresql"):
        pytest.skip("a PostgreSQL backup: runs with TEST_DATABASE_URL")
    server, _, name = url.rpartition("/")
    plain = server.replace("postgresql+psycopg://", "postgresql://")
    restored = f"{name}_restored"
    import psycopg

    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{restored}"')
    yield plain, name, restored
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')


def test_the_database_alone_restores_the_ledger_and_every_board(app_ctx, partner_api, rider,
                                                                  restored_url):  # fmt: skip
    plain, name, restored = restored_url
    partner_api.put_member("r2", name="李大明")
    for i in range(6):
        assert partner_api.post_event(shift(f"s{i}", days_ago=1 + i)).status_code == 201
        assert (
            partner_api.post_event(hazard(f"h{i}", member="r2", days_ago=1 + i)).status_code == 201
        )
    db.session.commit()
    rebuild_boards(get_redis(), app_ctx.config["APP_TIMEZONE"])
    original = _boards(get_redis())
    balances = dict(db.session.execute(select(Member.id, Member.balance)).all())
    assert original and any(balances.values())

    dump = subprocess.run(["pg_dump", "--format=custom", f"{plain}/{name}"],
                          capture_output=True, check=True, timeout=120).stdout  # fmt: skip
    subprocess.run(["pg_restore", "--no-owner", "--dbname", f"{plain}/{restored}"],
                   input=dump, capture_output=True, check=True, timeout=120)  # fmt: skip

    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13").rpartition("/")[0]
    other = create_app({"DATABASE_URL": f"{plain}/{restored}",
                        "REDIS_URL": f"{redis_url}/{RESTORED_REDIS_DB}",
                        "RULES_DIR": app_ctx.config["RULES_DIR"]})  # fmt: skip
    with other.app_context():
        client = get_redis()
        client.flushdb()  # a new, empty Redis
        try:
            assert verify_ledger().ok  # every hash chain and balance as it was
            assert dict(db.session.execute(select(Member.id, Member.balance)).all()) == balances
            rebuild_boards(client, other.config["APP_TIMEZONE"])
            assert _boards(client) == original  # the same boards, tie-break fractions included
        finally:
            client.flushdb()
            db.session.remove()
            db.engine.dispose()
