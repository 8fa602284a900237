"""Points expiry: points earned long ago lapse, as ``expire`` ledger entries, oldest first.

The policy is set per tree in the rules (``expiry:``, the nearest at or above the member's
primary organisation): ``end_of_following_year`` (points earned in 2025 lapse when 2027
begins) or ``after_months`` (N months after they were credited). Spending uses the oldest
points first, so what lapses at a cut-off is what was credited before it and is not already
gone: ``min(balance, credits before the cut-off - everything taken out since the start)``,
where taken out = every negative entry (spent, reversed, adjusted down, expired) less what
came back (refunds, reversals of a debit). Running it twice expires nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select

from ..engine import RuleSet
from ..engine.model import Expiry
from ..extensions import db
from ..models import LedgerEntry, LedgerKind, Member, Organisation
from ..models.base import utcnow
from . import ledger

CREDIT_KINDS = (LedgerKind.AWARD, LedgerKind.BONUS, LedgerKind.ADJUST)
GIVEN_BACK = (LedgerKind.REFUND, LedgerKind.REVERSE)


@dataclass(frozen=True)
class Lapse:
    points: int
    at: dt.datetime  # when they lapse (local time)
    earned_before: dt.datetime  # credited before this


def cutoff(policy: Expiry, now: dt.datetime, tz) -> dt.datetime:
    """Points credited before the returned moment have lapsed at ``now``."""
    local = now.astimezone(tz)
    if policy.policy == "after_months":
        return _months_back(local, policy.months or 0)
    return dt.datetime(local.year - 1, 1, 1, tzinfo=tz)


def next_lapse(policy: Expiry, now: dt.datetime, tz) -> tuple[dt.datetime, dt.datetime]:
    """(when the next points lapse, credited before what) for a warning ahead of it."""
    local = now.astimezone(tz)
    if policy.policy == "after_months":
        horizon = local + dt.timedelta(days=policy.warn_days)
        return horizon, _months_back(horizon, policy.months or 0)
    return dt.datetime(local.year + 1, 1, 1, tzinfo=tz), dt.datetime(local.year, 1, 1, tzinfo=tz)


def _months_back(local: dt.datetime, months: int) -> dt.datetime:
    y, m = divmod(local.year * 12 + local.month - 1 - months, 12)
    day = min(local.day, 28)  # the 31st of a month back may not exist: a day early is fair
    return local.replace(year=y, month=m + 1, day=day)


def _lapsing(member_ids: list[int], before: dt.datetime) -> dict[int, tuple[int, int]]:
    """member -> (credits before ``before``, taken out in all)."""
    e = LedgerEntry.__table__.c
    credits = func.sum(
        case((and_(e.kind.in_(CREDIT_KINDS), e.points > 0, e.created_at < before), e.points),
             else_=0)
    )  # fmt: skip
    taken = func.sum(
        case(
            (e.points < 0, -e.points),
            (and_(e.kind.in_(GIVEN_BACK), e.points > 0), -e.points),
            else_=0,
        )
    )
    rows = db.session.execute(
        select(e.member_id, credits, taken).where(e.member_id.in_(member_ids)).group_by(e.member_id)
    )
    return {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in rows}


def warning(rules: RuleSet, member: Member, now: dt.datetime | None = None) -> Lapse | None:
    """Points of ``member`` that lapse at the next cut-off, if it is within the policy's
    warning days."""
    policy = rules.expiry_for(member.primary_org.code)
    if policy is None or member.balance <= 0:
        return None
    now = now or utcnow()
    at, before = next_lapse(policy, now, rules.tz)
    if at - now > dt.timedelta(days=policy.warn_days):
        return None
    credits, taken = _lapsing([member.id], before).get(member.id, (0, 0))
    points = max(0, min(member.balance, credits - taken))
    return Lapse(points, at, before) if points else None


def expire_points(rules: RuleSet, now: dt.datetime | None = None, batch: int = 500,
                  on_batch=None) -> dict:  # fmt: skip
    """Write the ``expire`` entries due now for every member with points, a batch of members
    per transaction (committed here: a job). Returns what was done."""
    now = now or utcnow()
    report = {"members": 0, "expired_members": 0, "points": 0}
    last = 0
    orgs = dict(db.session.execute(select(Organisation.id, Organisation.code)).all())
    while True:
        ids = list(
            db.session.scalars(
                select(Member.id)
                .where(Member.id > last, Member.balance > 0)
                .order_by(Member.id)
                .limit(batch)
            )
        )
        if not ids:
            break
        last = ids[-1]
        _expire_batch(rules, ids, orgs, now, report)
        db.session.commit()
        if on_batch:
            on_batch(report)
    return report


def _expire_batch(rules: RuleSet, ids: list[int], orgs: dict, now, report: dict) -> None:
    primary = dict(
        db.session.execute(select(Member.id, Member.primary_org_id).where(Member.id.in_(ids))).all()
    )
    by_cut: dict[dt.datetime, list[int]] = {}
    for member_id in ids:
        policy = rules.expiry_for(orgs.get(primary[member_id]))
        if policy is not None:
            by_cut.setdefault(cutoff(policy, now, rules.tz), []).append(member_id)
    report["members"] += len(ids)
    if not by_cut:
        return
    # find who has points to lapse without locks, then lock those and count again
    due = {
        before: [m for m, (c, t) in _lapsing(group, before).items() if c > t]
        for before, group in by_cut.items()
    }
    states = ledger.lock_members([m for group in due.values() for m in group])
    if not states:
        return
    writer = ledger.LedgerWriter(states=states)
    for before, group in due.items():
        for member_id, (credits, taken) in _lapsing(group, before).items():
            state = states[member_id]
            points = min(state.balance, credits - taken)
            if points <= 0:
                continue
            writer.append(
                member_id,
                -points,
                LedgerKind.EXPIRE,
                org_code=orgs[primary[member_id]],
                category="other",
                created_at=now,
                occurred_at=now,
                reason=f"{before.date().isoformat()} 以前获得的积分已过期：{points} 分",
                explanation={
                    "earned_before": before.isoformat(),
                    "credits": credits,
                    "taken_out_before": taken,
                },
                ref=f"expiry:{before.date().isoformat()}",
            )
            report["expired_members"] += 1
            report["points"] += points
    ledger.write(writer)
