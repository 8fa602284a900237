"""The rider's pages, one module per area; importing a module adds its views to ``bp``."""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask
from flask_babel import lazy_gettext as _l

# (module, endpoint of its menu entry or None, menu label): the menu is built from those whose
# module is present, in this order
AREAS = (
    ("home", "web.home", _l("首页")),
    ("history", "web.history", _l("明细")),
    ("boards", "web.boards", _l("排行")),
    ("badges", "web.badges", _l("徽章")),
    ("rewards", "web.rewards", _l("兑换")),
    ("appeals", "web.appeals", _l("诉求")),
    ("certificate", "web.certificate", _l("志愿证明")),
    ("settings", "web.settings", _l("设置")),
)


def present() -> list[str]:
    found = []
    for module, _, _ in AREAS:
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise
            continue
        found.append(module)
    return found


def register(bp: Blueprint) -> None:
    from . import common  # noqa: F401 - login, logout, language, error pages

    present()


def register_public(app: Flask) -> None:
    """Pages for anyone, outside ``/m`` (the certificate check), if their module is here."""
    if "certificate" in present():
        from .certificate import public

        app.register_blueprint(public)
