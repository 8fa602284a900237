"""The audit log of the admin's subtree: every change made through the console, newest first."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select

from ...extensions import db
from ...models import AuditEntry, ConsoleUser
from ...services.console_users import in_subtree
from ...web.pages.history import parse_id
from .. import bp
from .common import current_user, user_required

PAGE = 100


def entries(user: ConsoleUser, before: int | None = None, limit: int = PAGE) -> list[AuditEntry]:
    """Audit entries of the user's subtree, newest first; ``before``: the id of the last entry
    of the previous page."""
    query = select(AuditEntry).where(in_subtree(AuditEntry.org_code, user.org_code))
    if before is not None:
        query = query.where(AuditEntry.id < before)
    return list(db.session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def changes(before: dict | None, after: dict | None) -> list[tuple[str, object, object]]:
    """(field, before, after) for every field either side names, in a stable order."""
    before, after = before or {}, after or {}
    keys = list(before) + [k for k in after if k not in before]
    return [(k, before.get(k), after.get(k)) for k in keys]


@bp.route("/audit", methods=["GET"])
@user_required("users")
def audit_log():
    rows = entries(current_user(), parse_id(request.args.get("before")), PAGE + 1)
    more = rows[PAGE - 1].id if len(rows) > PAGE else None
    return render_template("console/audit.html", rows=rows[:PAGE], more=more, changes=changes)
