"""Home: balance, level, ranks, points per week, badges, recent activity, points expiring."""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import format_date
from flask_babel import gettext as _

from ...services import dashboard
from ...services.rules import current_rules
from .. import bp, charts, i18n
from ..auth import current_member, member_required
from . import history


@bp.route("/")
@member_required
def home():
    me = current_member()
    data = dashboard.home(current_rules(), me, current_app.config["APP_TIMEZONE"])
    chart = charts.bars(
        [(format_date(monday, "M/d"), points) for monday, points in data["weeks"]],
        _("最近 12 周每周积分"),
    )
    lang = i18n.language()
    recent = [history.line(entry, lang) for entry in data["recent"]]
    return render_template("web/home.html", data=data, chart=chart, recent=recent)
