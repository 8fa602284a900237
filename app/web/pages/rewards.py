"""Rewards: what the member can redeem at which station, and if not why; redeeming with a
confirmation step; "my redemptions" with the code and its QR image to show at the station,
and cancelling before pickup.

The catalogue is the member's city's (the organisation of kind ``city`` above its primary
organisation), station by station, the nearest stations first and a page of stations at a
time, so that neither the page nor its queries grow with the city. Everything looked up by a
code from the URL is the member's own or answers 404.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets

import redis
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date, format_decimal
from flask_babel import gettext as _
from sqlalchemy import select

from ...engine import RuleSet
from ...engine.model import Reward
from ...errors import Conflict, NotFound
from ...extensions import db
from ...models import Organisation, Redemption, RedemptionStatus
from ...models.base import utcnow
from ...models.org import OrgKind
from ...redis_client import get_redis
from ...services import rewards
from ...services.boards.keys import ancestors
from ...services.rules import current_rules
from .. import bp, i18n
from ..auth import current_member, member_required

log = logging.getLogger(__name__)

STATIONS_PER_PAGE = 20
REDEMPTIONS_PER_PAGE = 30


@bp.route("/rewards", endpoint="rewards")
@member_required
def catalogue():
    """The city's rewards by station: cost, stock, limit, validity, and whether I may."""
    me = current_member()
    rules = current_rules()
    local = utcnow().astimezone(rules.tz)
    city, city_name = _city(me)
    by_station: dict[str, list[Reward]] = {}
    for r in rewards.catalogue(rules, city):
        by_station.setdefault(r.org, []).append(r)
    home = me.primary_org.code
    order = sorted(by_station, key=lambda code: (-_shared_levels(home, code), code))
    pages = max(1, math.ceil(len(order) / STATIONS_PER_PAGE))
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    shown = order[(page - 1) * STATIONS_PER_PAGE : page * STATIONS_PER_PAGE]
    listed = [r for code in shown for r in by_station[code]]
    counters = rewards.Counters(listed, local, me.id)
    views = rewards.member_views(rules, listed, me, local, counters)
    names = _org_names(rules, shown)
    stations = [
        {
            "code": code,
            "name": names[code],
            "rewards": [
                _offer(rules, r, counters, views[rewards.reward_key(r)]) for r in by_station[code]
            ],
        }
        for code in shown
    ]
    return render_template("web/rewards.html", stations=stations, city_name=city_name,
                           page=page, pages=pages)  # fmt: skip


ONCE_SECONDS = 24 * 3600


def _first_submit(once: str) -> bool:
    """Whether this confirmation form is posted for the first time: a double tap (two POSTs
    of one form, even at the same moment) redeems once. Kept in Redis for a day; if Redis
    cannot be reached the redemption goes ahead (the limit rules still apply)."""
    if not 16 <= len(once) <= 64:
        return False
    try:
        return bool(get_redis().set(f"web:once:{once}", 1, nx=True, ex=ONCE_SECONDS))
    except redis.RedisError:
        log.warning("redeem: Redis unreachable, the double-submit check is skipped")
        return True


@bp.route("/rewards/<path:key>/redeem", methods=["GET", "POST"])
@member_required
def redeem(key: str):
    """GET: what the member is about to redeem, and a button to confirm; POST: redeem it."""
    me = current_member()
    rules = current_rules()
    reward = _reward_or_404(rules, key)
    if request.method == "POST":
        if not _first_submit(request.form.get("once", "")):
            flash(_("这次兑换已经提交过了，请看“我的兑换”。"), "error")
            return redirect(url_for("web.redemptions"))
        try:
            redemption, _balance = rewards.redeem(rules, me, reward)
        except Conflict as refused:
            db.session.rollback()  # what the refused redemption flushed is undone
            flash(refusal_text(rules, reward, refused.code, refused.details), "error")
            return redirect(url_for("web.rewards"))
        db.session.commit()
        flash(_("兑换成功！请在有效期内到领取地点出示兑换码。"))
        return redirect(url_for("web.redemption", code=redemption.code))
    local = utcnow().astimezone(rules.tz)
    view = rewards.member_view(rules, reward, me, local)
    why = None if view.eligible else refusal_text(rules, reward, view.refusal.code,
                                                  view.refusal.details)  # fmt: skip
    return render_template(
        "web/redeem.html",
        once=secrets.token_urlsafe(16),
        reward=reward,
        key=rewards.reward_key(reward),
        name=_reward_name(reward),
        description=_reward_description(reward),
        station=_org_names(rules, [reward.org])[reward.org],
        after=me.balance - reward.cost,
        pickup=pickup_text(reward),
        why=why,
    )


@bp.route("/redemptions")
@member_required
def redemptions():
    """My redemptions, newest first, a page at a time."""
    me = current_member()
    page = max(request.args.get("page", 1, type=int), 1)
    rows = list(
        db.session.scalars(
            select(Redemption)
            .where(Redemption.member_id == me.id)
            .order_by(Redemption.created_at.desc(), Redemption.id.desc())
            .offset((page - 1) * REDEMPTIONS_PER_PAGE)
            .limit(REDEMPTIONS_PER_PAGE + 1)
        )
    )
    more, rows = len(rows) > REDEMPTIONS_PER_PAGE, rows[:REDEMPTIONS_PER_PAGE]
    names = _org_names(current_rules(), sorted({r.org_code for r in rows}))
    now = utcnow()
    items = [
        {"r": r, "station": names[r.org_code], "status": status_text(r, now),
         "name": _redemption_name(r)}
        for r in rows
    ]  # fmt: skip
    return render_template("web/redemptions.html", items=items, page=page, more=more)


@bp.route("/redemptions/<code>")
@member_required
def redemption(code: str):
    """One of my redemptions: the code and its QR image to show at the station."""
    r = _own_redemption(code)
    now = utcnow()
    rules = current_rules()
    return render_template(
        "web/redemption.html",
        r=r,
        name=_redemption_name(r),
        station=_org_names(rules, [r.org_code])[r.org_code],
        status=status_text(r, now),
        pending=r.status == RedemptionStatus.PENDING,
        overdue=r.expires_at is not None and r.expires_at <= now,
        qr_size=rewards.qr_size(r.code),
    )


@bp.route("/redemptions/<code>/qr.png")
@member_required
def redemption_qr(code: str):
    r = _own_redemption(code)
    return rewards.qr_png(r.code), 200, {"Content-Type": "image/png", "Cache-Control": "private"}


@bp.route("/redemptions/<code>/cancel", methods=["POST"])
@member_required
def cancel_redemption(code: str):
    """Cancel before pickup: the points come back."""
    r = _own_redemption(code)
    try:
        rewards.refund(r, RedemptionStatus.CANCELLED, "member")
    except Conflict:
        db.session.rollback()
        flash(_("这个兑换已无法取消：%(status)s", status=status_text(r, utcnow())), "error")
        return redirect(url_for("web.redemption", code=r.code))
    db.session.commit()
    flash(_("已取消兑换，%(points)s 分已退回。", points=format_decimal(r.cost)))
    return redirect(url_for("web.redemption", code=r.code))


# --- what the pages say ----------------------------------------------------------------------


def status_text(r: Redemption, now: dt.datetime) -> str:
    if r.status == RedemptionStatus.PENDING:
        if r.expires_at is not None and r.expires_at <= now:
            return _("已过期，积分将自动退回")
        return _("待领取")
    return {
        RedemptionStatus.CONFIRMED: _("已领取"),
        RedemptionStatus.CANCELLED: _("已取消，积分已退回"),
        RedemptionStatus.EXPIRED: _("逾期未领取，积分已退回"),
    }.get(r.status, r.status)


def _per_words(per) -> str:
    return {"day": _("每天"), "week": _("每周"), "month": _("每月"), "year": _("每年")}.get(
        str(per), ""
    )


def limit_text(reward: Reward) -> str | None:
    """``每人每月限兑 1 次``; None without a limit."""
    if reward.limit_count is None:
        return None
    if reward.limit_per:
        return _("每人%(per)s限兑 %(count)s 次", per=_per_words(reward.limit_per),
                 count=reward.limit_count)  # fmt: skip
    return _("每人限兑 %(count)s 次", count=reward.limit_count)


def pickup_text(reward: Reward) -> str:
    """How long after redeeming it may be picked up: hours, or days when whole."""
    hours = reward.pickup_hours or current_app.config["REDEMPTION_PICKUP_HOURS"]
    if hours >= 48 and hours % 24 == 0:
        return _("兑换后 %(days)s 天内", days=hours // 24)
    return _("兑换后 %(hours)s 小时内", hours=hours)


def refusal_text(rules: RuleSet, reward: Reward, code: str, details: dict) -> str:
    """Why the member may not redeem ``reward``, in the page's language, from a refusal's code
    and details (the service's own message is Chinese only)."""
    if code == "insufficient_points":
        return _("积分不足：需要 %(cost)s 分，现有 %(balance)s 分",
                 cost=format_decimal(reward.cost),
                 balance=format_decimal(details.get("balance", 0)))  # fmt: skip
    if code == "limit_reached":
        return _("已达兑换次数上限（%(limit)s）", limit=limit_text(reward) or "")
    if code == "out_of_stock":
        if "sponsor" in details:
            return _("赞助方「%(sponsor)s」本期预算已用完", sponsor=details["sponsor"])
        if "stock_per_period" in details or details.get("per_period"):
            return {"day": _("今天的已兑完，明天再来"), "week": _("本周的已兑完"),
                    "month": _("本月的已兑完"), "year": _("今年的已兑完")
                    }.get(str(reward.stock_per), _("本期已兑完"))  # fmt: skip
        return _("已兑完")
    if code == "not_eligible":
        if "valid_from" in details:
            return _("%(date)s 起可兑换", date=format_date(reward.valid_from))
        if "valid_until" in details:
            return _("兑换已于 %(date)s 结束", date=format_date(reward.valid_until))
        if "min_level" in details:
            return _("需要达到「%(level)s」等级", level=_level_name(rules, reward))
        if "party_member" in details:
            return _("仅限党员兑换")
        if "subtree" in details:
            return _("仅限本组织及下属组织的成员兑换")
        if "industry" in details:
            return _("仅限本行业成员兑换")
        if "badge" in details:
            return _("需要先获得「%(badge)s」徽章", badge=_badge_name(rules, reward))
    return _("现在无法兑换")


def _offer(rules: RuleSet, r: Reward, counters: rewards.Counters, view) -> dict:
    why = None
    if not view.eligible:
        details = dict(view.refusal.details)
        if view.refusal.code == "out_of_stock" and counters.period_left(r) == 0:
            # the period's share is gone but the total is not: say when to come back
            details["per_period"] = counters.total_left(r) != 0
        why = refusal_text(rules, r, view.refusal.code, details)
    return {
        "key": rewards.reward_key(r),
        "name": _reward_name(r),
        "description": _reward_description(r),
        "cost": r.cost,
        "stock_left": counters.stock_left(r),
        "limit": limit_text(r),
        "redeemed": view.redeemed,
        "valid_from": r.valid_from,
        "valid_until": r.valid_until,
        "sponsor": r.sponsor,
        "pickup": pickup_text(r),
        "eligible": view.eligible,
        "why": why,
    }


def _english() -> bool:
    return i18n.language() == "en"


def _reward_name(r: Reward) -> str:
    return r.name_en if _english() and r.name_en else r.name


def _reward_description(r: Reward) -> str:
    return r.description_en if _english() and r.description_en else r.description


def _redemption_name(r: Redemption) -> str:
    """The name it was redeemed under, in English if the reward (still) has one."""
    if not _english():
        return r.name
    try:
        return rewards.find_reward(current_rules(), r.reward).name_en or r.name
    except NotFound:
        return r.name


def _level_name(rules: RuleSet, reward: Reward) -> str:
    for lv in rules.levels_for(reward.org):
        if lv.id == reward.min_level:
            return lv.name_en if _english() and lv.name_en else lv.name
    return reward.min_level or ""


def _badge_name(rules: RuleSet, reward: Reward) -> str:
    for b in rules.badges_for(reward.org):
        if b.id == reward.badge:
            return b.name_en if _english() and b.name_en else b.name
    return reward.badge or ""


# --- lookups ---------------------------------------------------------------------------------


def _city(member) -> tuple[str, str]:
    """The code and name of the organisation whose catalogue the member sees: the city above
    its primary organisation, else that organisation's top two levels (``sx.ty``)."""
    chain = ancestors(member.primary_org.code)
    cities = db.session.execute(
        select(Organisation.code, Organisation.name).where(
            Organisation.code.in_(chain), Organisation.kind == OrgKind.CITY
        )
    ).all()
    if cities:
        return max(cities, key=lambda c: len(c.code))
    code = ".".join(chain[-1].split(".")[:2])
    return code, _org_names(current_rules(), [code])[code]


def _shared_levels(home: str, org: str) -> int:
    """How many leading levels ``org``'s code shares with ``home``'s: nearer stations first."""
    n = 0
    for a, b in zip(home.split("."), org.split("."), strict=False):
        if a != b:
            break
        n += 1
    return n


def _org_names(rules: RuleSet, codes: list[str]) -> dict[str, str]:
    """Names of organisations: the organisations table's; in English the rules file's English
    name when it has one; else the rules file's name, else the code."""
    found = dict(
        db.session.execute(
            select(Organisation.code, Organisation.name).where(Organisation.code.in_(codes))
        ).all()
    ) if codes else {}  # fmt: skip
    out = {}
    for code in codes:
        f = rules.files.get(code)
        if _english() and f is not None and f.name_en:
            out[code] = f.name_en
        else:
            out[code] = found.get(code) or (f.name if f is not None else code)
    return out


def _reward_or_404(rules: RuleSet, key: str) -> Reward:
    try:
        return rewards.find_reward(rules, key)
    except NotFound:
        abort(404)


def _own_redemption(code: str) -> Redemption:
    """The signed-in member's redemption with this code; 404 for anyone else's."""
    if not 4 <= len(code) <= 16 or not code.isascii() or not code.isalnum():
        abort(404)
    r = db.session.scalar(
        select(Redemption).where(
            Redemption.code == code.upper(), Redemption.member_id == current_member().id
        )
    )
    if r is None:
        abort(404)
    return r
