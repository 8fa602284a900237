"""Console pages, one module per area; importing a module adds its views to ``bp``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

# the menu: (endpoint, label, the action a user's role needs to see it, or None)
AREAS = (
    ("console.dashboard", _l("概览"), None),
    ("console.queue", _l("待确认"), "verify"),
)


def register() -> None:
    from . import common, verify  # noqa: F401 - importing adds the views
