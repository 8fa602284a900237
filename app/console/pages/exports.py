"""Exports of the user's subtree: member points and redemptions of one month, as CSV (UTF-8
with a byte-order mark, streamed) or XLSX. Each export is written to the audit log: who took
which data out, of which organisation and month."""

from __future__ import annotations

from flask import Response, abort, current_app, render_template, request, stream_with_context
from flask_babel import gettext as _

from ...engine.periods import zone
from ...extensions import db
from ...models import RedemptionStatus
from ...models.base import utcnow
from ...services import console_users, exports
from ...web.pages.history import category_words
from .. import bp
from .boards import scope_org
from .common import current_user, user_required

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _points_header() -> list[str]:
    words = category_words()
    return [_("骑手编号"), _("姓名"), _("组织编码"), _("组织名称"),
            *(words.get(c, c) for c in exports.CATEGORIES), _("合计")]  # fmt: skip


def _redemptions_header() -> list[str]:
    return [_("兑换码"), _("奖品"), _("驿站编码"), _("驿站名称"), _("状态"), _("兑换时间"),
            _("处理时间"), _("积分")]  # fmt: skip


def _status_words() -> dict[str, str]:
    return {
        RedemptionStatus.PENDING: _("待领取"),
        RedemptionStatus.CONFIRMED: _("已领取"),
        RedemptionStatus.CANCELLED: _("已取消"),
        RedemptionStatus.EXPIRED: _("已过期"),
    }


def _this_month() -> str:
    tz = zone(current_app.config["APP_TIMEZONE"])
    return f"{utcnow().astimezone(tz):%Y-%m}"


@bp.route("/exports", methods=["GET"])
@user_required()
def exports_page():
    user = current_user()
    return render_template("console/exports.html", org=user.org_code, month=_this_month())


@bp.route("/exports/<kind>", methods=["GET"])
@user_required()
def export(kind: str):
    if kind not in ("points", "redemptions"):
        abort(404)
    fmt = request.args.get("format", "csv")
    if fmt not in FORMATS:
        abort(400)
    org = scope_org(request.args.get("org", ""))
    month = request.args.get("month", "").strip()[:7] or _this_month()
    tz_name = current_app.config["APP_TIMEZONE"]
    try:
        start, end = exports.month_span(month, tz_name)
    except ValueError:
        abort(400)
    user = current_user()
    console_users.audit(user, org.code, f"export.{kind}", f"org:{org.code}",
                        after={"org": org.code, "month": month, "format": fmt})  # fmt: skip
    db.session.commit()  # before the rows are read: a streamed response commits nothing
    if kind == "points":
        header, rows = _points_header(), exports.member_points(org.code, start, end)
    else:
        words = _status_words()
        header = _redemptions_header()
        rows = (
            (*row[:4], words.get(row[4], row[4]), *row[5:])
            for row in exports.redemptions(org.code, start, end, tz_name)
        )
    filename = f"{kind}-{org.code}-{month}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "csv":
        body = stream_with_context(exports.csv_chunks(header, rows))
    else:
        body = exports.xlsx_bytes(f"{kind} {month}", header, rows)
    return Response(body, mimetype=FORMATS[fmt], headers=headers)
