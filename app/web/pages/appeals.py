"""Appeals (诉求): raise one about a history line, about an event that earned nothing (yet),
or about an activity missing altogether; follow its status and the organisation's answer;
say whether the answer resolved it."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _

from ...errors import Conflict, Invalid
from ...extensions import db
from ...models import AppealStatus
from ...models.base import utcnow
from ...services import appeals as service
from ...services.rules import current_rules
from .. import bp, i18n
from ..auth import current_member, member_required
from .history import MAX_ID, event_item, line, parse_id


def kind_words() -> dict[str, str]:
    return {
        service.AppealKind.POINTS: _("积分有误"),
        service.AppealKind.MISSING: _("活动没有得到积分"),
        service.AppealKind.OTHER: _("其他问题"),
    }


def status_words() -> dict[str, str]:
    return {
        AppealStatus.OPEN: _("已提交，等待处理"),
        AppealStatus.ASSIGNED: _("处理中"),
        AppealStatus.ANSWERED: _("已答复，等你评价"),
        AppealStatus.RESOLVED: _("已解决"),
        AppealStatus.REOPENED: _("未解决，重新处理中"),
        AppealStatus.ARCHIVED: _("已归档"),
    }


def _errors(details: dict) -> dict[str, str]:
    """The service's refusal, in words for the form."""
    words = {
        "unknown": _("请选择问题类型。"),
        "short": _("请写下你的问题，至少 %(n)s 个字。", n=service.NOTE_MIN),
        "long": _("说明太长了，请不超过 %(n)s 个字。", n=service.NOTE_MAX),
    }
    return {field: words[code] for field, code in details.items()}


def _subject(member_id: int, form) -> tuple:
    """The ledger line or event named by ``entry``/``event`` in ``form``: the member's own,
    or 404. Neither named: (None, None), an activity missing altogether."""
    entry = event = None
    if form.get("entry"):
        entry_id = parse_id(form["entry"])
        entry = service.own_entry(member_id, entry_id) if entry_id else None
        if entry is None:
            abort(404)
    elif form.get("event"):
        event_id = parse_id(form["event"])
        event = service.own_event(member_id, event_id) if event_id else None
        if event is None:
            abort(404)
    return entry, event


def _about(entry, event, lang: str) -> dict:
    """What the appeal is about, for the page: a history line, an event, or nothing."""
    if entry is not None:
        return {"line": line(entry, lang)}
    if event is not None:
        return {"event": event_item(event, current_rules(), lang)}
    return {}


@bp.route("/appeals")
@member_required
def appeals():
    me = current_member()
    now = utcnow()
    kinds, statuses = kind_words(), status_words()
    rows = [
        {
            "id": a.id,
            "kind": kinds.get(a.kind, a.kind),
            "note": a.note,
            "status": statuses.get(a.status, a.status),
            "answered": a.status == AppealStatus.ANSWERED,
            "created": a.created_at,
            "age": format_timedelta(a.created_at - now, add_direction=True),
        }
        for a in service.appeals_of(me.id)
    ]
    return render_template("web/appeals.html", appeals=rows)


@bp.route("/appeals/new", methods=["GET", "POST"])
@member_required
def appeal_new():
    me = current_member()
    source = request.form if request.method == "POST" else request.args
    entry, event = _subject(me.id, source)
    kind = service.AppealKind.POINTS if entry is not None else service.AppealKind.MISSING
    note, errors, status = "", {}, 200
    if request.method == "POST":
        kind, note = source.get("kind", ""), source.get("note", "")
        try:
            appeal = service.raise_appeal(me, kind, note, entry, event)
        except Invalid as refused:
            db.session.rollback()
            errors, status = _errors(refused.details), 422
        except Conflict as refused:
            db.session.rollback()
            flash(_("你已经就这件事提出过诉求，请在这里查看进展。"))
            return redirect(url_for("web.appeal", appeal_id=refused.details["appeal"]))
        else:
            db.session.commit()
            flash(_("诉求已提交，组织会尽快答复。"))
            return redirect(url_for("web.appeal", appeal_id=appeal.id))
    return render_template(
        "web/appeal_new.html",
        about=_about(entry, event, i18n.language()),
        entry_id=entry.id if entry is not None else None,
        event_id=event.id if event is not None else None,
        existing=service.unfinished_about(me.id, entry, event) if not errors else None,
        kinds=kind_words(),
        kind=kind,
        note=note,
        errors=errors,
        note_min=service.NOTE_MIN,
        note_max=service.NOTE_MAX,
    ), status


@bp.route(f"/appeals/<int(min=1, max={MAX_ID}):appeal_id>")
@member_required
def appeal(appeal_id: int):
    me = current_member()
    found = service.own_appeal(me.id, appeal_id) or abort(404)
    entry = service.own_entry(me.id, found.ledger_entry_id) if found.ledger_entry_id else None
    event = None
    if entry is None and found.event_id:
        event = service.own_event(me.id, found.event_id)
    return render_template(
        "web/appeal.html",
        appeal=found,
        kind=kind_words().get(found.kind, found.kind),
        status=status_words().get(found.status, found.status),
        answered=found.status == AppealStatus.ANSWERED,
        about=_about(entry, event, i18n.language()),
    )


@bp.route(f"/appeals/<int(min=1, max={MAX_ID}):appeal_id>/feedback", methods=["POST"])
@member_required
def appeal_feedback(appeal_id: int):
    me = current_member()
    found = service.own_appeal(me.id, appeal_id) or abort(404)
    back = redirect(url_for("web.appeal", appeal_id=found.id))
    said = request.form.get("resolved")
    if said not in ("yes", "no"):
        flash(_("请选择“解决了”或“没有解决”。"), "error")
        return back
    try:
        service.give_feedback(found, said == "yes")
    except Conflict:
        db.session.rollback()
        flash(_("现在还不能评价这条诉求：组织还没有答复，或者你已经评价过了。"), "error")
        return back
    db.session.commit()
    if said == "yes":
        flash(_("谢谢你的反馈，这条诉求已解决。"))
    else:
        flash(_("已转回组织重新处理，请留意新的答复。"))
    return back
