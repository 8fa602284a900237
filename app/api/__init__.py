"""The partner JSON API under /api/v1, documented at /api/openapi.json and /api/docs."""

from __future__ import annotations

from flask import Flask

from ..extensions import api
from . import docs, events, leaderboards, members, rewards


def blueprints() -> tuple:
    """The partner API's blueprints (authenticated with a partner key; rate limited per
    partner by app/limits.py)."""
    return tuple(module.blp for module in (members, events, leaderboards, rewards))


def init_app(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "Pioneer Points partner API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api.init_app(app, spec_kwargs={"info": {"description": docs.DESCRIPTION}})
    api.spec.components.security_scheme(
        "partnerKey", {"type": "http", "scheme": "bearer", "description": "pp_<id>_<secret>"}
    )
    for blueprint in blueprints():
        api.register_blueprint(blueprint, url_prefix="/api/v1")
    app.register_blueprint(docs.blp)
