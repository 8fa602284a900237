"""Pioneer Points: a points-and-incentive engine for the civic work of new employment groups."""

from __future__ import annotations

from flask import Flask

from . import cli, config


def create_app(overrides: dict | None = None) -> Flask:
    """Build the application: configuration, then each component's ``init_app``. No I/O."""
    app = Flask(__name__)
    config.load(app.config, overrides)
    cli.init_app(app)
    return app
