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


def test_every_response_carries_a_request_id_and_logs_carry_it(client, app_ctx, caplog):
    import json
    import logging

    from app.logs import JsonFormatter, RequestIdFilter

    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert len(first) == 32 and first != second  # a new one each time
    # the caller's own id comes back; anything but a plain token is replaced
    assert client.get("/healthz", headers={"X-Request-Id": "p-42.a_b"}).headers[
        "X-Request-Id"] == "p-42.a_b"  # fmt: skip
    for bad in ("x" * 65, "a b", "<script>", "../etc", "a;b"):
        echoed = client.get("/healthz", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert echoed != bad and len(echoed) == 32
    # a log line written while serving a request is JSON with that request's id
    with app_ctx.test_request_context("/readyz", headers={"X-Request-Id": "trace-1"}):
        app_ctx.preprocess_request()
        record = logging.LogRecord("app.test", logging.WARNING, __file__, 1, "not %s", ("ready",),
                                   None)  # fmt: skip
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "trace-1" and line["message"] == "not ready"
    assert line["level"] == "WARNING" and line["logger"] == "app.test" and line["ts"]


def test_database_errors_that_are_logged_carry_no_parameters(app_ctx):
    """A failing statement's exception (what an error log would print) shows its SQL, never
    the values bound to it: names and references are personal data."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from app.extensions import db

    with pytest.raises(DBAPIError) as caught:
        db.session.execute(text("SELECT * FROM no_such_table WHERE name = :name"),
                           {"name": "张秘密13800138000"})  # fmt: skip
    db.session.rollback()
    assert "no_such_table" in str(caught.value)
    assert "张秘密" not in str(caught.value) and "13800138000" not in str(caught.value)
