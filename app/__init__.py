"""Pioneer Points: a points-and-incentive engine for the civic work of new employment groups."""

from __future__ import annotations

from flask import Flask


def create_app(overrides: dict | None = None) -> Flask:
    """Build the application: configuration, then each component's ``init_app``. No I/O."""
    from . import (
        api,
        cli,
        config,
        console,
        errors,
        extensions,
        headers,
        health,
        limits,
        logs,
        metrics,
        redis_client,
        sessions,
        web,
    )
    from .services import rules

    app = Flask(__name__, instance_relative_config=True)
    config.load(app.config, overrides, app.instance_path)
    extensions.init_db(app)
    logs.init_app(app)
    sessions.init_app(app)
    headers.init_app(app)
    metrics.init_app(app)
    redis_client.init_app(app)
    errors.init_app(app)
    rules.init_app(app)
    api.init_app(app)
    health.init_app(app)
    web.init_app(app)
    console.init_app(app)
    limits.init_app(app)
    cli.init_app(app)
    return app
