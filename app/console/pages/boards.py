"""Leaderboards of the user's subtree: any organisation in it, any period (archived ones from
their archive), any category. Names are masked as on the public boards; the member id is
shown so staff can look a member up. An organisation outside the subtree is "not found"."""

from __future__ import annotations

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from ...extensions import db
from ...models import Organisation
from ...models.base import utcnow
from ...redis_client import get_redis
from ...services import console_users
from ...services.boards import read
from ...services.boards.keys import CATEGORIES, TOTAL, OpenPeriods, PeriodKind
from ...web.pages.history import category_words
from .. import bp
from .common import current_user, user_required

LIMIT = 50
CODE_MAX = 200


def scope_org(text: str) -> Organisation:
    """The organisation with the code ``text`` if it is in the user's subtree; else 404."""
    code = text.strip()[:CODE_MAX] or current_user().org_code
    if not console_users.in_scope(current_user(), code):
        abort(404)
    org = db.session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        abort(404)
    return org


def period_words() -> dict[str, str]:
    return {
        PeriodKind.WEEK: _("本周"),
        PeriodKind.MONTH: _("本月"),
        PeriodKind.YEAR: _("今年"),
        PeriodKind.ALL: _("累计"),
    }


@bp.route("/boards", methods=["GET"])
@user_required()
def boards():
    org = scope_org(request.args.get("scope", ""))
    asked = request.args.get("period", "").strip()[:16] or PeriodKind.WEEK
    category = request.args.get("category", TOTAL)
    children = list(
        db.session.scalars(
            select(Organisation).where(Organisation.parent_code == org.code).order_by(
                Organisation.code)
        )
    )  # fmt: skip
    words = {TOTAL: _("全部"), **{k: v for k, v in category_words().items() if k}}
    context = {"org": org, "children": children, "asked": asked, "category": category,
               "categories": [(c, words.get(c, c)) for c in CATEGORIES],
               "periods": period_words(), "limit": LIMIT}  # fmt: skip
    open_ = OpenPeriods.at(utcnow(), current_app.config["APP_TIMEZONE"])
    try:
        period = open_.resolve(asked)
    except ValueError:
        error = _("请填写 week、month、year、all，或 2026-W47、2026-11、2026 这样的周期。")
        return render_template("console/boards.html", error=error, **context), 400
    if category not in CATEGORIES:
        return render_template("console/boards.html", error=_("请选择一个分类。"), **context), 400
    archived = read.is_closed(period)
    total, lines = read.page(get_redis(), org.code, period, category, LIMIT, 0, archived)
    names = read.names(line.member_id for line in lines)
    rows = [(line, names.get(line.member_id, read.HIDDEN_NAME)) for line in lines]
    return render_template("console/boards.html", period=period, archived=archived, total=total,
                           rows=rows, error=None, **context)  # fmt: skip
