"""Console pages every user has: sign in and out, the overview, the menu, the error page."""

from __future__ import annotations

import functools

from flask import abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from ...extensions import db
from ...models import ConsoleUser, Event, EventStatus, Redemption, RedemptionStatus
from ...models.base import utcnow
from ...services import console_users
from ...web import auth as web_auth
from ...web import i18n
from .. import bp
from . import AREAS

SESSION_KEY = "cu"

bp.before_request(web_auth.check_csrf)


def current_user() -> ConsoleUser | None:
    if not hasattr(request, "pp_user"):
        user_id = session.get(SESSION_KEY)
        user = db.session.get(ConsoleUser, user_id) if isinstance(user_id, int) else None
        request.pp_user = user if user is not None and user.disabled_at is None else None
    return request.pp_user


def user_required(action: str | None = None):
    """Console pages: signed in (else the sign-in page), and allowed ``action`` (else 403)."""

    def wrap(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                return redirect(url_for("console.login", next=request.path))
            if action and not console_users.may(user, action):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return wrap


@bp.app_context_processor
def layout() -> dict:
    if not request.path.startswith("/console"):
        return {}
    user = current_user()
    menu = [
        (endpoint, str(label))
        for endpoint, label, action in AREAS
        if user is not None and (action is None or console_users.may(user, action))
    ]
    return {"user": user, "lang": i18n.language(), "menu": menu}


@bp.errorhandler(HTTPException)
def error_page(exc: HTTPException):
    code = exc.code or 500
    text = {
        403: _("你的角色不能做这件事。"),
        404: _("找不到这个页面，或者它不在你的组织范围内。"),
        400: _("请求无法完成，请返回后刷新再试。"),
    }.get(code, _("出错了，请稍后再试。"))
    return render_template("console/message.html", heading=_("无法完成"), text=text), code


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        user = console_users.authenticate(
            request.form.get("username", "")[:64], request.form.get("password", "")[:200]
        )
        if user is None:
            error = _("用户名或密码不对。")
        else:
            lang = session.get("lang")
            session.clear()  # a new session: nothing from before the sign-in carries over
            if lang:
                session["lang"] = lang
            session.permanent = True
            session[SESSION_KEY] = user.id
            session["csrf"] = web_auth.csrf_token()
            user.last_login_at = utcnow()
            db.session.commit()
            target = request.args.get("next", "")
            if not target.startswith("/console/") or target.startswith("//"):
                target = url_for("console.dashboard")
            return redirect(target)
    return render_template("console/login.html", error=error), 401 if error else 200


@bp.route("/logout", methods=["POST"])
def logout():
    session.pop(SESSION_KEY, None)
    return redirect(url_for("console.login"))


@bp.route("/")
@user_required()
def dashboard():
    user = current_user()
    scope = (Event.org_code == user.org_code) | Event.org_code.startswith(user.org_code + ".")
    waiting = db.session.scalar(
        select(func.count()).select_from(Event).where(Event.status == EventStatus.PENDING, scope)
    )
    r_scope = (Redemption.org_code == user.org_code) | Redemption.org_code.startswith(
        user.org_code + "."
    )
    redemptions = db.session.scalar(
        select(func.count())
        .select_from(Redemption)
        .where(Redemption.status == RedemptionStatus.PENDING, r_scope)
    )
    return render_template("console/dashboard.html", waiting=waiting, redemptions=redemptions,
                           can_verify=console_users.may(user, "verify"))  # fmt: skip
