"""The organisations' console (``/console``): server-rendered pages for the staff of branch
organisations, in the rider pages' look, zh-CN first. A user signs in with a username and
password and sees only their organisation's subtree; each action is allowed by their role
(``services.console_users.CAN``) and written to the audit log.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")


def init_app(app: Flask) -> None:
    from . import pages
    from .pages.common import error_page

    pages.register()
    app.register_blueprint(bp)
    app.extensions.setdefault("pioneer.error_pages", {})["/console/"] = error_page
