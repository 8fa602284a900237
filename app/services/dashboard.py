"""What the rider's home page shows, gathered in one place: balance and level, ranks on the
boards that matter to a rider with the change since the last period, points per week, badges,
recent activity and points about to expire. Reads only: no writes, no commits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ..engine import RuleSet
from ..engine.periods import zone
from ..extensions import db
from ..models import LedgerEntry, Member, Organisation
from ..models.base import utcnow
from ..redis_client import get_redis
from . import expiry, standing
from .boards import read
from .boards.keys import BOARD_KINDS, OpenPeriods, PeriodKind, ancestors

RANK_KINDS = ("station", "street", "city")  # the organisation boards a rider looks at
WEEKS = 12


def rider_scopes(member: Member) -> list[dict]:
    """The boards a rider looks at: its own organisation, its street and city, its
    industry; each {scope, name, kind}."""
    chain = ancestors(member.primary_org.code)  # the root first, the member's own last
    orgs = {
        o.code: o
        for o in db.session.scalars(select(Organisation).where(Organisation.code.in_(chain)))
    }
    out = [{"scope": chain[-1], "name": member.primary_org.name, "kind": "own"}]
    for code in reversed(chain[:-1]):
        org = orgs.get(code)
        if org is not None and org.kind in RANK_KINDS:
            out.append({"scope": code, "name": org.name, "kind": org.kind})
    if member.industry:
        code = f"ind.{member.industry}"
        org = db.session.scalar(select(Organisation).where(Organisation.code == code))
        out.append({"scope": code, "name": org.name if org else code, "kind": "industry"})
    return out


def ranks(member: Member, tz_name: str, now: dt.datetime | None = None) -> list[dict]:
    """Per rider board ({scope, name, kind, week, month}): the member's rank, points and the
    board's size this week and this month, with last period's rank (None when it was not on
    that board) for the change."""
    periods = OpenPeriods.at(now or utcnow(), tz_name)
    kinds = (PeriodKind.WEEK, PeriodKind.MONTH)
    scopes = rider_scopes(member)
    boards = [(s["scope"], periods.current[k], "total") for s in scopes for k in kinds] + [
        (s["scope"], periods.previous[k], "total") for s in scopes for k in kinds
    ]
    found = {
        (r["scope"], r["period"]): r for r in read.member_ranks(get_redis(), member.id, boards)
    }
    out = []
    for s in scopes:
        row = dict(s)
        for k in kinds:
            now_ = found.get((s["scope"], periods.current[k]))
            before = found.get((s["scope"], periods.previous[k]))
            row[str(k)] = {
                "rank": now_["rank"] if now_ else None,
                "points": now_["points"] if now_ else 0,
                "total": now_["total"] if now_ else 0,
                "previous": before["rank"] if before else None,
            }
        out.append(row)
    return out


def weekly_points(member: Member, tz_name: str, now: dt.datetime | None = None) -> list[tuple]:
    """(Monday, points) for the last ``WEEKS`` weeks, oldest first, by when the activity
    happened; the points that count on boards (spending is not activity)."""
    tz = zone(tz_name)
    today = (now or utcnow()).astimezone(tz).date()
    monday = today - dt.timedelta(days=today.weekday())
    first = monday - dt.timedelta(weeks=WEEKS - 1)
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    rows = db.session.execute(
        select(LedgerEntry.occurred_at, LedgerEntry.points).where(
            LedgerEntry.member_id == member.id,
            LedgerEntry.occurred_at >= start,
            LedgerEntry.kind.in_([str(k) for k in BOARD_KINDS]),
        )
    )
    weeks = {first + dt.timedelta(weeks=i): 0 for i in range(WEEKS)}
    for occurred_at, points in rows:
        day = occurred_at.astimezone(tz).date()
        weeks[day - dt.timedelta(days=day.weekday())] += points
    return sorted(weeks.items())


def recent(member: Member, limit: int = 5) -> list[LedgerEntry]:
    return list(
        db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.member_id == member.id)
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
    )


def home(rules: RuleSet, member: Member, tz_name: str, now: dt.datetime | None = None) -> dict:
    progress = standing.badge_progress(rules, member)
    nearest = sorted(
        (b for b in progress if b["next_at"] is not None and b["share"] < 1),
        key=lambda b: -b["share"],
    )[:3]
    return {
        "level": standing.level_info(rules, member),
        "ranks": ranks(member, tz_name, now),
        "weeks": weekly_points(member, tz_name, now),
        "badges": standing.badges_held(rules, member)[:3],
        "nearest": nearest,
        "recent": recent(member),
        "expiring": expiry.warning(rules, member, now),
    }
