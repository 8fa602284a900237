"""The rider's pages (``/m``): server-rendered, mobile-first, Chinese first, no JavaScript
needed.

A partner's app asks the API for a login link (``auth.issue_link``) and opens it; the link
starts a session (a signed, HttpOnly, SameSite cookie) for that one member, and every page
shows only that member's data. Forms carry a CSRF token. Pages live in ``pages/``, one module
per area, all on the one blueprint ``bp``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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

    # the stylesheet's URL carries a hash of its content, so browsers may keep it a year and
    # a page costs one request, not a request and a 304
    css = (Path(bp.static_folder) / "web.css").read_bytes()
    app.jinja_env.globals["css_version"] = hashlib.sha256(css).hexdigest()[:10]
    if app.config.get("SEND_FILE_MAX_AGE_DEFAULT") is None:
        app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 365 * 24 * 3600

    i18n.init_app(app)
    auth.init_app(app)
    pages.register(bp)
    app.register_blueprint(bp)
    pages.register_public(app)
    from .pages.common import error_page

    pages_ = app.extensions.setdefault("pioneer.error_pages", {})
    pages_["/m/"] = pages_["/verify/"] = error_page
