"""The redemption desk: a station's staff type (or scan) a code, see what it is for and confirm
the pickup. A code of another subtree is "not found", like one that does not exist."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ...errors import Conflict
from ...extensions import db
from ...models import ConsoleUser, Member, Organisation, Redemption, RedemptionStatus
from ...models.base import utcnow
from ...services import rewards
from ...services.boards.keys import mask_name
from ...services.console_users import audit, in_scope
from .. import bp
from .common import current_user, user_required


def status_words() -> dict[str, str]:
    return {
        RedemptionStatus.PENDING: _("等待领取"),
        RedemptionStatus.CONFIRMED: _("已领取"),
        RedemptionStatus.CANCELLED: _("已取消，积分已退回"),
        RedemptionStatus.EXPIRED: _("已过期，积分已退回"),
    }


def find(user: ConsoleUser, code: str) -> Redemption | None:
    """The redemption with this code if it is handed out in the user's subtree; else None,
    whether it exists elsewhere or not at all."""
    code = code.strip().upper()
    if not 4 <= len(code) <= 16 or not code.isalnum() or not code.isascii():
        return None
    r = db.session.scalar(select(Redemption).where(Redemption.code == code))
    return r if r is not None and in_scope(user, r.org_code) else None


@bp.route("/desk", methods=["GET"])
@user_required("redeem_desk")
def desk():
    code = request.args.get("code", "").strip()[:32]
    if not code:
        return render_template("console/desk.html", code="", redemption=None)
    r = find(current_user(), code)
    if r is None:
        return render_template("console/desk.html", code=code, redemption=None), 404
    member = db.session.get(Member, r.member_id)
    station = db.session.scalar(select(Organisation.name).where(Organisation.code == r.org_code))
    return render_template(
        "console/desk.html",
        code=r.code,
        redemption=r,
        member_name=mask_name(member.display_name if member else ""),
        station=station or r.org_code,
        status=status_words()[r.status],
        overdue=r.status == RedemptionStatus.PENDING and r.expires_at and r.expires_at <= utcnow(),
    )


@bp.route("/desk/<code>/confirm", methods=["POST"])
@user_required("redeem_desk")
def confirm_pickup(code: str):
    user = current_user()
    r = find(user, code)
    if r is None:
        abort(404)
    try:
        rewards.confirm(r, f"console:{user.username}")
    except Conflict:  # decided before, or by someone else meanwhile
        db.session.rollback()
        r = find(user, code)
        flash(_("兑换码 %(code)s %(status)s，不能再确认。", code=r.code,
                status=status_words()[r.status]), "error")  # fmt: skip
        return redirect(url_for("console.desk", code=r.code))
    audit(user, r.org_code, "redemption.confirm", f"redemption:{r.code}",
          {"status": RedemptionStatus.PENDING.value}, {"status": str(r.status)})  # fmt: skip
    db.session.commit()
    if r.status == RedemptionStatus.CONFIRMED:
        flash(_("已确认领取：%(name)s。", name=r.name))
    else:
        flash(_("兑换码 %(code)s 已超过领取时间，按过期处理：%(cost)s 分已退回骑手。",
                code=r.code, cost=r.cost), "error")  # fmt: skip
    return redirect(url_for("console.desk", code=r.code))
