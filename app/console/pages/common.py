"""Console pages every user has: sign in and out, the overview, the menu, the error page."""

from __future__ import annotations

import datetime as dt
import functools
import itertools

from flask import abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import case, func, select
from werkzeug.exceptions import HTTPException

from ...engine.periods import zone
from ...extensions import db
from ...models import (
    ConsoleUser,
    Event,
    EventStatus,
    LedgerEntry,
    LedgerKind,
    Member,
    Organisation,
    Redemption,
    RedemptionStatus,
)
from ...models.base import utcnow
from ...redis_client import get_redis
from ...services import console_users
from ...services.boards import read
from ...services.boards.keys import BOARD_KINDS, TOTAL, OpenPeriods, PeriodKind
from ...services.console_users import in_subtree
from ...web import auth as web_auth
from ...web import charts, i18n
from ...web.pages.history import category_words
from .. import bp
from . import AREAS

SESSION_KEY = "cu"
WEEKS = 12  # the points chart on the overview
TOP = 10  # members listed on the overview

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


def _weekly_by_category(org_code: str, first: dt.datetime, weeks: int) -> dict[str, list[int]]:
    """Board points per category and week of the subtree, the oldest week first: one
    GROUP BY over the ledger, a conditional sum per week (portable, no date functions)."""
    bounds = [first + dt.timedelta(weeks=i) for i in range(weeks + 1)]
    e = LedgerEntry
    sums = [
        func.coalesce(func.sum(case(((e.occurred_at >= lo) & (e.occurred_at < hi), e.points),
                                    else_=0)), 0)
        for lo, hi in itertools.pairwise(bounds)
    ]  # fmt: skip
    rows = db.session.execute(
        select(e.category, *sums)
        .where(
            in_subtree(e.org_code, org_code),
            e.occurred_at >= bounds[0],
            e.occurred_at < bounds[-1],
            e.kind.in_([str(k) for k in BOARD_KINDS]),
        )
        .group_by(e.category)
    )
    return {row[0]: [int(v) for v in row[1:]] for row in rows}


@bp.route("/")
@user_required()
def dashboard():
    user = current_user()
    org = user.org_code
    waiting = db.session.scalar(
        select(func.count())
        .select_from(Event)
        .where(Event.status == EventStatus.PENDING, in_subtree(Event.org_code, org))
    )
    redemptions = db.session.scalar(
        select(func.count())
        .select_from(Redemption)
        .where(Redemption.status == RedemptionStatus.PENDING, in_subtree(Redemption.org_code, org))
    )
    members = db.session.scalar(
        select(func.count())
        .select_from(Member)
        .where(Member.primary_org_id.in_(select(Organisation.id).where(
            in_subtree(Organisation.code, org))))
    )  # fmt: skip
    tz_name = current_app.config["APP_TIMEZONE"]
    now = utcnow()
    today = now.astimezone(zone(tz_name)).date()
    monday = today - dt.timedelta(days=today.weekday())
    this_week = dt.datetime.combine(monday, dt.time(), tzinfo=zone(tz_name))
    active = db.session.scalar(
        select(func.count(LedgerEntry.member_id.distinct())).where(
            in_subtree(LedgerEntry.org_code, org),
            LedgerEntry.occurred_at >= this_week,
            LedgerEntry.kind == LedgerKind.AWARD,
        )
    )
    first = this_week - dt.timedelta(weeks=WEEKS - 1)
    by_category = _weekly_by_category(org, first, WEEKS)
    totals = [sum(week) for week in zip(*by_category.values(), strict=True)] or [0] * WEEKS
    labels = [f"{(monday - dt.timedelta(weeks=WEEKS - 1 - i)):%m-%d}" for i in range(WEEKS)]
    chart = charts.bars(list(zip(labels, totals, strict=True)), _("近 12 周每周积分"), 3)
    words = category_words()
    categories = [
        (words.get(c, c), sum(weeks), weeks[-1]) for c, weeks in sorted(by_category.items())
    ]
    month = OpenPeriods.at(now, tz_name).current[PeriodKind.MONTH]
    _total, lines = read.page(get_redis(), org, month, TOTAL, TOP, 0, archived=False)
    names = read.names(line.member_id for line in lines)
    top = [(line, names.get(line.member_id, read.HIDDEN_NAME)) for line in lines]
    return render_template(
        "console/dashboard.html",
        waiting=waiting,
        redemptions=redemptions,
        members=members,
        active=active,
        chart=chart,
        categories=categories,
        points_12w=sum(totals),
        top=top,
        month=month,
        can_verify=console_users.may(user, "verify"),
    )
