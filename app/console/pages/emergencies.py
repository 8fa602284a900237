"""Emergency mode (平急转换): the emergencies of the user's subtree (in force, planned, ended),
declaring one for a region of the subtree, and ending one early."""

from __future__ import annotations

import datetime as dt

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...engine.periods import zone
from ...errors import Conflict, Invalid, NotFound
from ...extensions import db
from ...models.base import utcnow
from ...services import console_users
from ...services import emergencies as service
from .. import bp
from .common import current_user, user_required

MAX_ID = 2**31 - 1  # emergencies have INTEGER ids
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


def kind_words() -> dict[str, str]:
    return {
        "flood": _("洪涝"),
        "snowstorm": _("暴雪"),
        "epidemic": _("疫情"),
        "earthquake": _("地震"),
        "fire": _("火灾"),
        "heat": _("高温"),
        "other": _("其他"),
    }


def state_words() -> dict[str, str]:
    return {
        service.EmergencyState.IN_FORCE: _("生效中"),
        service.EmergencyState.PLANNED: _("未开始"),
        service.EmergencyState.ENDED: _("已结束"),
    }


def _errors(details: dict) -> dict[str, str]:
    words = {
        ("org", "outside"): _("请填写你的组织或下级组织的编码。"),
        ("name", "short"): _("名称至少 %(n)s 个字。", n=service.NAME_MIN),
        ("name", "long"): _("名称不超过 %(n)s 个字。", n=service.NAME_MAX),
        ("kind", "unknown"): _("请选择类型。"),
        ("starts_at", "missing"): _("开始时间的格式不对。"),
        ("planned_end_at", "missing"): _("请填写计划结束时间。"),
        ("planned_end_at", "before_start"): _("计划结束时间要晚于开始时间。"),
        ("planned_end_at", "past"): _("计划结束时间已经过去了。"),
    }
    return {field: words.get((field, code), code) for field, code in details.items()}


def _tz():
    return zone(current_app.config["APP_TIMEZONE"])


def _parse(value: str, default: dt.datetime | None = None) -> dt.datetime | None:
    """A local time from a datetime-local input, as an aware moment; blank gives
    ``default``, anything unreadable None."""
    value = (value or "").strip()
    if not value:
        return default
    try:
        moment = dt.datetime.fromisoformat(value[:19])
    except ValueError:
        return None
    if not 2000 <= moment.year <= 2100:  # far off, the conversion to UTC could overflow
        return None
    return moment.replace(tzinfo=_tz()) if moment.tzinfo is None else moment


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(_tz()).strftime(LOCAL_INPUT)


def _page(form: dict, errors: dict | None = None, status: int = 200):
    user = current_user()
    now = utcnow()
    rows = service.of_subtree(user)
    states = {e.id: service.state(e, now) for e in rows}
    order = [service.EmergencyState.IN_FORCE, service.EmergencyState.PLANNED,
             service.EmergencyState.ENDED]  # fmt: skip
    rows.sort(key=lambda e: order.index(states[e.id]))  # stable: the latest start first within
    can = console_users.may(user, "emergency")
    return render_template(
        "console/emergencies.html",
        emergencies=rows,
        states=states,
        state_words=state_words(),
        kinds=kind_words(),
        can_change=can,
        regions=service.regions(user) if can else [],
        form=form,
        errors=errors or {},
        name_max=service.NAME_MAX,
    ), status


@bp.route("/emergencies", methods=["GET"])
@user_required()
def emergencies():
    now = utcnow()
    form = {"org": current_user().org_code, "name": "", "kind": "flood",
            "starts_at": _local(now), "planned_end_at": ""}  # fmt: skip
    return _page(form)


@bp.route("/emergencies", methods=["POST"])
@user_required("emergency")
def emergency_declare():
    user = current_user()
    now = utcnow()
    form = {k: request.form.get(k, "")[:200] for k in
            ("org", "name", "kind", "starts_at", "planned_end_at")}  # fmt: skip
    try:
        emergency = service.declare(
            user,
            form["org"],
            form["name"],
            form["kind"],
            _parse(form["starts_at"], default=now),
            _parse(form["planned_end_at"]),
            now=now,
        )
    except Invalid as refused:
        db.session.rollback()
        return _page(form, _errors(refused.details), 422)
    db.session.commit()
    flash(_("已宣布应急状态“%(name)s”。", name=emergency.name))
    return redirect(url_for("console.emergencies"))


@bp.route(f"/emergencies/<int(min=1, max={MAX_ID}):emergency_id>/end", methods=["POST"])
@user_required("emergency")
def emergency_end(emergency_id: int):
    try:
        emergency = service.end(current_user(), emergency_id)
    except NotFound:
        abort(404)
    except Conflict:
        db.session.rollback()
        flash(_("这次应急状态已经结束了。"), "error")
        return redirect(url_for("console.emergencies"))
    db.session.commit()
    flash(_("已结束应急状态“%(name)s”。", name=emergency.name))
    return redirect(url_for("console.emergencies"))
