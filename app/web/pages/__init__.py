"""The rider's pages, one module per area; importing a module adds its views to ``bp``."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_babel import lazy_gettext as _l

# the menu: (module of the area, endpoint of its entry, label), in this order
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


def register(bp: Blueprint) -> None:
    from . import (  # noqa: F401 - importing adds the views
        appeals,
        badges,
        boards,
        certificate,
        common,
        history,
        home,
        rewards,
        settings,
    )


def register_public(app: Flask) -> None:
    """Pages for anyone, outside ``/m``: the certificate check."""
    from .certificate import public

    app.register_blueprint(public)
