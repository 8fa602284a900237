"""Console pages, one module per area; importing a module adds its views to ``bp``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

# the menu: (endpoint, label, the action a user's role needs to see it, or None)
AREAS = (
    ("console.dashboard", _l("概览"), None),
    ("console.queue", _l("待确认"), "verify"),
    ("console.appeals", _l("诉求"), None),
    ("console.emergencies", _l("应急状态"), None),
    ("console.desk", _l("兑换核销"), "redeem_desk"),
    ("console.members", _l("骑手"), None),
    ("console.boards", _l("排行榜"), None),
    ("console.exports_page", _l("导出"), None),
    ("console.audit_log", _l("操作记录"), "users"),
    ("console.rules", _l("规则"), None),
    ("console.users", _l("用户"), "users"),
)


def register() -> None:
    from . import (  # noqa: F401
        appeals,
        audit,
        boards,
        common,
        desk,
        emergencies,
        exports,
        members,
        rules,
        users,
        verify,
    )
