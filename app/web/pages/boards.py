"""Leaderboards: the top of one of the member's own boards, with its own row even when far down.

A member reads only the boards it is on (``dashboard.rider_scopes``: its organisation, street,
city and industry), never an arbitrary organisation's; others are listed by masked names.
"""

from __future__ import annotations

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _

from ...models.base import utcnow
from ...redis_client import get_redis
from ...services.boards import read
from ...services.boards.keys import OpenPeriods, PeriodKind
from ...services.dashboard import rider_scopes
from .. import bp
from ..auth import current_member, member_required

TOP = 20
PERIODS = ("week", "month", "year", "all")
CATEGORIES = ("total", "pioneer", "governance", "volunteer")


def _period_labels() -> dict[str, str]:
    return {"week": _("本周"), "month": _("本月"), "year": _("今年"), "all": _("总榜")}


def _category_labels() -> dict[str, str]:
    return {"total": _("全部积分"), "pioneer": _("先锋岗位"), "governance": _("基层治理"),
            "volunteer": _("志愿服务")}  # fmt: skip


def _kind_labels() -> dict[str, str]:
    return {"own": _("所属组织"), "station": _("驿站"), "street": _("街道"), "city": _("城市"),
            "industry": _("行业")}  # fmt: skip


def _period(text: str, open_: OpenPeriods) -> tuple[str, str, bool]:
    """(what the form shows, the board's period id, whether it is archived): ``week`` →
    ("week", "2026-W48", False); the id of a live or archived past period as is; anything
    else → this week."""
    current = {period: str(kind) for kind, period in open_.current.items()}
    try:
        period = open_.resolve(text)
    except ValueError:
        period = None
    if period in current:
        return current[period], period, False
    if period is not None:
        archived = read.is_closed(period)
        if archived or period in open_.ids:
            return period, period, archived
    return PERIODS[0], open_.current[PeriodKind.WEEK], False


@bp.route("/boards")
@member_required
def boards():
    me = current_member()
    scopes = rider_scopes(me)
    scope = request.args.get("scope") or scopes[0]["scope"]
    board = next((s for s in scopes if s["scope"] == scope), None)
    if board is None:  # not one of the member's boards: it may not read it here
        abort(404)
    open_ = OpenPeriods.at(utcnow(), current_app.config["APP_TIMEZONE"])
    chosen, period, archived = _period(request.args.get("period", ""), open_)
    category = request.args.get("category", "")
    if category not in CATEGORIES:
        category = CATEGORIES[0]

    client = get_redis()
    total, lines = read.page(client, scope, period, category, TOP, 0, archived)
    listed = {line.member_id for line in lines}
    mine = None
    if me.id not in listed:  # far from the top (or not on the board): its own lines
        found = read.member_ranks(client, me.id, [(scope, period, category)])
        mine = found[0] if found else None
    near = [mine["above"], mine["below"]] if mine else []
    names = read.names([line.member_id for line in lines + near if line] + [me.id])
    hidden = _("匿名")  # read.HIDDEN_NAME in the page's language
    names = {m: hidden if name == read.HIDDEN_NAME else name for m, name in names.items()}

    def row(line: read.Line) -> dict:
        return {"rank": line.rank, "points": line.points, "me": line.member_id == me.id,
                "name": names.get(line.member_id, hidden)}  # fmt: skip

    tail, gap = [], False
    if mine is not None:
        above, below = mine["above"], mine["below"]
        gap = above is None or above.member_id not in listed  # not right after the top
        if above is not None and above.member_id not in listed:
            tail.append(row(above))
        tail.append({"rank": mine["rank"], "points": mine["points"], "me": True,
                     "name": names.get(me.id, hidden)})  # fmt: skip
        if below is not None:
            tail.append(row(below))

    periods = _period_labels()
    if chosen not in periods:
        periods[chosen] = chosen  # a past period asked for by its id
    quick = [
        (_("本周"), "week"),
        (_("上周"), open_.previous[PeriodKind.WEEK]),
        (_("本月"), "month"),
        (_("上月"), open_.previous[PeriodKind.MONTH]),
    ]
    return render_template(
        "web/boards.html",
        scopes=scopes,
        kinds=_kind_labels(),
        board=board,
        periods=periods,
        categories=_category_labels(),
        chosen=chosen,
        period=period,
        category=category,
        archived=archived,
        total=total,
        rows=[row(line) for line in lines],
        tail=tail,
        gap=gap,
        on_board=bool(tail) or me.id in listed,
        quick=quick,
    )
