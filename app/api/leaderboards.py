"""Leaderboards: the top of a board, organisations against their siblings, a member's ranks.

A partner reads the boards of the organisations it may report for (their subtrees), every
industry committee's board, and its own members' board (scope ``partner``). Lines carry a
rank, a masked name and points: never a phone number or a partner's member reference.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy import select

from ..errors import Forbidden, Invalid
from ..extensions import db
from ..models import LedgerEntry
from ..models.base import utcnow
from ..redis_client import get_redis
from ..services.boards import read
from ..services.boards.keys import (
    INDUSTRY_ROOT,
    PARTNER_PREFIX,
    OpenPeriods,
    ancestors,
)
from ..services.members import find_member, member_codes
from .auth import SECURITY, require_partner
from .schemas import (
    BoardOut,
    BoardQuery,
    ChildrenOut,
    ChildrenQuery,
    ErrorOut,
    RanksOut,
    RanksQuery,
)

blp = Blueprint("leaderboards", __name__, description="Rankings by organisation and period")
blp.before_request(require_partner)
DEFAULT_PERIODS = ("week", "month", "year", "all")
DEFAULT_CATEGORIES = ("total",)
LEDGER_ORGS = 50  # organisations of a member's own entries looked at for its ranks


def _scope(scope: str) -> str:
    """The board scope a partner asked for, checked against what it may read."""
    if scope == "partner":
        return PARTNER_PREFIX + g.partner.code
    if scope.startswith(PARTNER_PREFIX):
        if scope != PARTNER_PREFIX + g.partner.code:
            raise Forbidden("a partner sees only its own members' board", code="not_your_board")
        return scope
    if not scope or len(scope) > 200 or not all(p.isalnum() or p in ".-_" for p in scope):
        raise Invalid("not an organisation code", {"scope": scope})
    industry = scope == INDUSTRY_ROOT or scope.startswith(INDUSTRY_ROOT + ".")
    if not industry and not g.partner.may_report_for(scope):
        raise Forbidden(f"this key may not read {scope}", {"scope": scope}, "org_not_allowed")
    return scope


def _period(text: str, now: dt.datetime | None = None) -> str:
    open_ = OpenPeriods.at(now or utcnow(), current_app.config["APP_TIMEZONE"])
    try:
        return open_.resolve(text)
    except ValueError as exc:  # 2026-W60, 2026-13: the right shape, no such period
        raise Invalid(str(exc), {"period": text}) from None


def _line(line, names: dict) -> dict | None:
    if line is None:
        return None
    return {"rank": line.rank, "name": names.get(line.member_id, read.HIDDEN_NAME),
            "points": line.points}  # fmt: skip


@blp.route("/leaderboards/<path:scope>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(BoardQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=BoardOut, description="A page of the board", success=True)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(403, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def get_board(scope: str, period: str, category: str, limit: int, offset: int):
    """The top of a board: rank, masked name and points, and how many are ranked.

    ``scope`` is an organisation code (its subtree), an industry committee (``ind.express``;
    ``ind`` for all industries) or ``partner`` (the calling partner's own members). Equal
    points share a rank; whoever reached the total first is listed first.
    """
    scope, period = _scope(scope), _period(period)
    archived = read.is_closed(period)
    total, lines = read.page(get_redis(), scope, period, category, limit, offset, archived)
    names = read.names(line.member_id for line in lines)
    body = {
        "scope": scope,
        "period": period,
        "category": category,
        "archived": archived,
        "total": total,
        "items": [_line(line, names) for line in lines],
    }
    return body, 200  # already the documented shape: no marshmallow pass on the way out


@blp.route("/leaderboards/<path:scope>/children", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(ChildrenQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, ChildrenOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(403, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def get_children(scope: str, period: str, category: str, by: str):
    """The organisations just below ``scope`` ranked against each other: by points, or by
    points per active member (members with points there in the period)."""
    scope, period = _scope(scope), _period(period)
    if scope.startswith(PARTNER_PREFIX):
        raise Invalid("a partner's board has no organisations below it", {"scope": scope})
    items = read.children(get_redis(), scope, period, category)
    key = "points" if by == "points" else "points_per_member"
    items.sort(key=lambda item: (-item[key], item["org"]))
    rank, last = 0, None
    for position, item in enumerate(items, 1):
        if item[key] != last:
            rank, last = position, item[key]
        item["rank"] = rank
    return {"scope": scope, "period": period, "category": category, "by": by, "items": items}


@blp.route("/members/<ref>/ranks", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(RanksQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=RanksOut, description="The member's ranks", success=True)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def get_ranks(ref: str, period: list | None = None, category: list | None = None):
    """The member's rank on every board it is on, with the members just above and below.

    Boards: its organisations and their ancestors (and wherever its points were earned), its
    industry, and the calling partner's board; for each period and category asked (by
    default this week, month and year and all time, in total).
    """
    member = find_member(g.partner, ref)
    now = utcnow()
    periods = list(dict.fromkeys(_period(p, now) for p in (period or DEFAULT_PERIODS)))
    categories = list(dict.fromkeys(category or DEFAULT_CATEGORIES))
    orgs = set(member_codes(member))
    orgs.update(
        db.session.scalars(
            select(LedgerEntry.org_code)
            .where(LedgerEntry.member_id == member.id)
            .distinct()
            .limit(LEDGER_ORGS)
        )
    )
    scopes: list[str] = []
    for code in sorted(orgs):
        scopes += ancestors(code)
    if member.industry:
        scopes += [INDUSTRY_ROOT, f"{INDUSTRY_ROOT}.{member.industry}"]
    scopes.append(PARTNER_PREFIX + g.partner.code)
    scopes = list(dict.fromkeys(scopes))
    boards = [(s, p, c) for s in scopes for p in periods for c in categories]
    ranks = read.member_ranks(get_redis(), member.id, boards)
    names = read.names(n.member_id for r in ranks for n in (r["above"], r["below"]) if n)
    out = []
    for r in ranks:
        out.append({
            "scope": r["scope"], "period": r["period"], "category": r["category"],
            "rank": r["rank"], "points": r["points"], "total": r["total"],
            "above": _line(r["above"], names), "below": _line(r["below"], names),
        })  # fmt: skip
    return {"ref": ref, "boards": out}, 200
