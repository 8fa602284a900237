"""The verification queue: events waiting in the user's subtree, approved or rejected in bulk."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ...extensions import db
from ...models import Member
from ...services import verification
from ...services.rules import current_rules
from .. import bp
from .common import current_user, user_required


@bp.route("/verify", methods=["GET"])
@user_required("verify")
def queue():
    user = current_user()
    events = verification.pending(user, limit=100)
    members = {
        m.id: m
        for m in db.session.scalars(
            select(Member).where(Member.id.in_({e.member_id for e in events}))
        )
    }
    rules = current_rules()
    return render_template("console/queue.html", events=events, members=members, rules=rules)


@bp.route("/verify", methods=["POST"])
@user_required("verify")
def decide():
    user = current_user()
    ids = [int(x) for x in request.form.getlist("event") if x.isdigit()][: verification.MAX_BATCH]
    action = request.form.get("action")
    if not ids:
        flash(_("请先勾选要处理的活动。"), "error")
        return redirect(url_for("console.queue"))
    if action == "approve":
        decision = verification.approve(current_rules(), user, ids)
    elif action == "reject":
        reason = request.form.get("reason", "").strip()
        if not reason:
            flash(_("驳回时请写明原因，骑手会看到它。"), "error")
            return redirect(url_for("console.queue"))
        decision = verification.reject(user, ids, reason)
    else:
        abort(400)
    db.session.commit()
    flash(_("已处理 %(done)s 项，跳过 %(skipped)s 项。", done=len(decision.decided),
            skipped=len(decision.skipped)))  # fmt: skip
    return redirect(url_for("console.queue"))
