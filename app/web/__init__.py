"""The rider's pages (``/m``): server-rendered, mobile-first, Chinese first, no JavaScript
needed.

A partner's app asks the API for a login link (``auth.issue_link``) and opens it; the link
starts a session (a signed, HttpOnly, SameSite cookie) for that one member, and every page
shows only that member's data. Forms carry a CSRF token. Pages live in ``pages/``, one module
per area, all on the one blueprint ``bp``.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from . import i18n

bp = Blueprint(
    "web",
    __name__,
    url_prefix="/m",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


def init_app(app: Flask) -> None:
    from . import auth, pages

    i18n.init_app(app)
    auth.init_app(app)
    pages.register(bp)
    app.register_blueprint(bp)
    pages.register_public(app)
    from .pages.common import error_page

    app.extensions["pioneer.web_error_page"] = error_page
