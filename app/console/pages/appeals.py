"""Appeals (诉求): the list of the subtree's appeals by status and age, and an appeal's page
with the rider's note, what it is about, and the actions: assign, answer, pass up, archive."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ...errors import Conflict, Invalid
from ...extensions import db
from ...models import AppealStatus, Event, EventStatus, LedgerEntry, Member
from ...models.base import utcnow
from ...services import appeal_handling as service
from ...services import console_users
from ...services.rules import current_rules
from .. import bp
from .common import current_user, user_required

MAX_ID = 2**63 - 1  # appeals have BIGINT ids


def status_words() -> dict[str, str]:
    return {
        AppealStatus.OPEN: _("待处理"),
        AppealStatus.ASSIGNED: _("处理中"),
        AppealStatus.ANSWERED: _("已答复，等骑手评价"),
        AppealStatus.RESOLVED: _("骑手确认已解决"),
        AppealStatus.REOPENED: _("骑手表示未解决"),
        AppealStatus.ARCHIVED: _("已归档"),
    }


def kind_words() -> dict[str, str]:
    return {"points": _("积分有误"), "missing": _("活动没有得到积分"), "other": _("其他问题")}


def event_status_words() -> dict[str, str]:
    return {
        EventStatus.AWARDED: _("已计分"),
        EventStatus.PENDING: _("待确认"),
        EventStatus.REJECTED: _("已驳回"),
        EventStatus.NO_MATCH: _("没有适用的规则"),
        EventStatus.DUPLICATE: _("重复上报"),
    }


@bp.route("/appeals")
@user_required()
def appeals():
    user = current_user()
    status = request.args.get("status", "")
    if status and status not in {s.value for s in AppealStatus}:
        status = ""
    rows = service.listing(user, status or None)
    ids = {a.member_id for a in rows}
    members = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(ids)))}
    now = utcnow()
    return render_template(
        "console/appeals.html",
        appeals=rows,
        members=members,
        ages={a.id: service.age_days(a, now) for a in rows},
        status=status,
        statuses=status_words(),
        kinds=kind_words(),
    )


def _found(appeal_id: int):
    return service.get(current_user(), appeal_id) or abort(404)


def _page(appeal, answer: str = "", errors: dict | None = None, status: int = 200):
    user = current_user()
    entry = db.session.get(LedgerEntry, appeal.ledger_entry_id) if appeal.ledger_entry_id else None
    event = db.session.get(Event, appeal.event_id) if appeal.event_id else None
    can = console_users.may(user, "appeals")
    waiting = appeal.status in service.HANDLING
    return render_template(
        "console/appeal.html",
        appeal=appeal,
        member=db.session.get(Member, appeal.member_id),
        entry=entry,
        event=event,
        rules=current_rules(),
        age=service.age_days(appeal),
        statuses=status_words(),
        kinds=kind_words(),
        event_statuses=event_status_words(),
        can_handle=can and waiting,
        can_archive=can and appeal.status in service.ARCHIVABLE,
        assignees=service.assignees(user, appeal) if can and waiting else [],
        parent=service.parent_of(appeal) if can and waiting else None,
        answer=answer,
        errors=errors or {},
        answer_max=service.ANSWER_MAX,
    ), status


@bp.route(f"/appeals/<int(min=1, max={MAX_ID}):appeal_id>")
@user_required()
def appeal(appeal_id: int):
    return _page(_found(appeal_id))


def _changed(appeal_id: int):
    db.session.rollback()
    flash(_("这条诉求刚被别人处理过，请看最新的状态。"), "error")
    if service.get(current_user(), appeal_id) is None:
        return redirect(url_for("console.appeals"))
    return redirect(url_for("console.appeal", appeal_id=appeal_id))


@bp.route(f"/appeals/<int(min=1, max={MAX_ID}):appeal_id>/assign", methods=["POST"])
@user_required("appeals")
def appeal_assign(appeal_id: int):
    user = current_user()
    found = _found(appeal_id)
    username = request.form.get("assignee", "")[:64]
    if request.form.get("me"):
        username = user.username
    try:
        service.assign(user, found, username, request.form.get("expect"))
    except Invalid:
        db.session.rollback()
        flash(_("请选择能处理这条诉求的人。"), "error")
        return redirect(url_for("console.appeal", appeal_id=appeal_id))
    except Conflict:
        return _changed(appeal_id)
    db.session.commit()
    flash(_("已指派给 %(name)s。", name=username))
    return redirect(url_for("console.appeal", appeal_id=appeal_id))


@bp.route(f"/appeals/<int(min=1, max={MAX_ID}):appeal_id>/answer", methods=["POST"])
@user_required("appeals")
def appeal_answer(appeal_id: int):
    found = _found(appeal_id)
    text = request.form.get("answer", "")[: service.ANSWER_MAX * 2]
    try:
        service.answer(current_user(), found, text, request.form.get("expect"))
    except Invalid as refused:
        db.session.rollback()
        words = {
            "short": _("答复至少 %(n)s 个字。", n=service.ANSWER_MIN),
            "long": _("答复不超过 %(n)s 个字。", n=service.ANSWER_MAX),
        }
        return _page(found, text, {"answer": words[refused.details["answer"]]}, 422)
    except Conflict:
        return _changed(appeal_id)
    db.session.commit()
    flash(_("已答复，骑手会在诉求页面看到。"))
    return redirect(url_for("console.appeal", appeal_id=appeal_id))


@bp.route(f"/appeals/<int(min=1, max={MAX_ID}):appeal_id>/escalate", methods=["POST"])
@user_required("appeals")
def appeal_escalate(appeal_id: int):
    user = current_user()
    found = _found(appeal_id)
    try:
        parent = service.escalate(user, found, request.form.get("expect"))
    except Invalid:
        db.session.rollback()
        flash(_("这条诉求已经在最上级组织，不能再上报。"), "error")
        return redirect(url_for("console.appeal", appeal_id=appeal_id))
    except Conflict:
        return _changed(appeal_id)
    db.session.commit()
    flash(_("已上报给 %(org)s。", org=parent))
    if console_users.in_scope(user, parent):
        return redirect(url_for("console.appeal", appeal_id=appeal_id))
    return redirect(url_for("console.appeals"))  # it left the user's subtree


@bp.route(f"/appeals/<int(min=1, max={MAX_ID}):appeal_id>/archive", methods=["POST"])
@user_required("appeals")
def appeal_archive(appeal_id: int):
    found = _found(appeal_id)
    try:
        service.archive(current_user(), found, request.form.get("expect"))
    except Conflict:
        db.session.rollback()
        flash(_("只有已答复或已解决的诉求才能归档。"), "error")
        return redirect(url_for("console.appeal", appeal_id=appeal_id))
    db.session.commit()
    flash(_("已归档。"))
    return redirect(url_for("console.appeal", appeal_id=appeal_id))
