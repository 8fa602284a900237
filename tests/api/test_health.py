"""/healthz says the process serves; /readyz checks the database, Redis and the rules, and
answers 503 with the API's error shape naming what is down."""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from app.errors import Unavailable


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_checks_the_database_redis_and_the_rules(client, app_ctx):
    from app.services.rules import current_rules

    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready"
    assert response.json["checks"] == {
        "database": "ok",
        "redis": "ok",
        "rules": f"ok (version {current_rules().version})",
    }


def _down(what: str, monkeypatch, app_ctx):
    if what == "database":
        from app.extensions import db

        def fail(*args, **kwargs):
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))

        monkeypatch.setattr(db.session, "execute", fail)
    elif what == "redis":
        from app.redis_client import get_redis

        client = get_redis()

        def fail():
            raise RedisConnectionError("connection refused")

        monkeypatch.setattr(client, "ping", fail)
    else:
        from app.services.rules import registry

        def fail():
            raise Unavailable("the rules could not be loaded", code="rules_unavailable")

        monkeypatch.setattr(registry(), "current", fail)


@pytest.mark.parametrize("what", ["database", "redis", "rules"])
def test_readyz_names_what_is_down_with_503(client, app_ctx, monkeypatch, what):
    _down(what, monkeypatch, app_ctx)
    response = client.get("/readyz")
    assert response.status_code == 503
    error = response.json["error"]
    assert error["code"] == "not_ready" and error["message"] == f"not ready: {what}"
    assert not error["details"][what].startswith("ok")
    assert all(state.startswith("ok") for name, state in error["details"].items() if name != what)
    assert "Traceback" not in response.get_data(as_text=True)
