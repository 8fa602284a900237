"""Redemption and what follows it: taking the points, the stock and the budget in one
transaction; pickup at the station; cancellation and expiry with their refunds; the QR image
of a code; what sponsors have paid for."""

from __future__ import annotations

import datetime as dt
import io
import secrets

import segno
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ...engine import MemberFacts, RuleSet
from ...engine.model import Reward
from ...errors import Conflict, Forbidden, NotFound
from ...extensions import db
from ...models import (
    LedgerKind,
    Member,
    Redemption,
    RedemptionStatus,
    RewardUsage,
)
from ...models.base import utcnow
from .. import ledger
from .offers import (
    Refusal,
    Usage,
    catalogue,
    eligibility,
    facts_of,
    member_count,
    reward_key,
    usage_periods,
)

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a counter
CODE_LENGTH = 8


def redeem(rules: RuleSet, member: Member, reward: Reward, now: dt.datetime | None = None
           ) -> tuple[Redemption, int]:  # fmt: skip
    """Redeem ``reward`` for ``member``: the redemption and the member's new balance. Raises
    ``Conflict`` with the refusal's code when it may not be done; the caller then rolls back
    (what was flushed is undone: nothing is written).

    The stock and the sponsor's budget are taken last, just before the caller commits: their
    rows are the ones every redemption of a popular reward waits for, so they are held for as
    short a time as possible."""
    now = now or utcnow()
    local = now.astimezone(rules.tz)
    state = ledger.lock_members([member.id])[member.id]
    facts = facts_of(member)
    facts = MemberFacts(facts.party_member, facts.industry, state.level, facts.primary_org,
                        facts.orgs, facts.tags)  # fmt: skip
    refusal = eligibility(rules, reward, facts, state.progress, local.date())
    if refusal is None and state.balance < reward.cost:
        refusal = Refusal(
            "insufficient_points",
            f"积分不足：需要 {reward.cost} 分，现有 {state.balance} 分",
            {"cost": reward.cost, "balance": state.balance},
        )
    use = usage_periods(reward, local)
    if refusal is None and reward.limit_count is not None:
        had = member_count(member.id, reward, use.limit_period)
        if had >= reward.limit_count:
            refusal = Refusal(
                "limit_reached",
                f"{_per_text(reward)}限兑 {reward.limit_count} 次",
                {"limit": reward.limit_count, "per": str(reward.limit_per or "ever"),
                 "redeemed": had},
            )  # fmt: skip
    if refusal is not None:
        raise Conflict(refusal.message, refusal.details, refusal.code)
    code = _new_code()
    writer = ledger.LedgerWriter(states={member.id: state})
    writer.append(
        member.id,
        -reward.cost,
        LedgerKind.REDEEM,
        org_code=reward.org,
        category="other",
        created_at=now,
        occurred_at=now,
        rules_version=rules.version,
        reason=f"兑换「{reward.name}」（兑换码 {code}）",
        explanation={"reward": reward_key(reward), "code": code, "cost": reward.cost},
        ref=f"redemption:{code}",
    )
    (entry,) = ledger.write(writer)
    hours = reward.pickup_hours or current_app.config["REDEMPTION_PICKUP_HOURS"]
    redemption = Redemption(
        code=code,
        member_id=member.id,
        reward=reward_key(reward),
        org_code=reward.org,
        name=reward.name,
        cost=reward.cost,
        status=RedemptionStatus.PENDING,
        created_at=now,
        expires_at=now + dt.timedelta(hours=hours),
        stock_period=use.stock_period,
        limit_period=use.limit_period,
        sponsor=reward.sponsor if use.budget_period else None,
        budget_period=use.budget_period,
        yuan=reward.yuan_per_item,
        rules_version=rules.version,
        redeem_entry_id=entry["id"],
    )
    db.session.add(redemption)
    db.session.flush()
    refusal = _take(reward, use)
    if refusal is not None:
        raise Conflict(refusal.message, refusal.details, refusal.code)
    return redemption, state.balance


def _per_text(reward: Reward) -> str:
    """ "每人每月" for a monthly limit; "每人" for one that never resets."""
    per = {"day": "天", "week": "周", "month": "月", "year": "年"}.get(str(reward.limit_per))
    return f"每人每{per}" if per else "每人"


def _take(reward: Reward, use: Usage) -> Refusal | None:
    """Take one item of stock and the sponsor's budget for it, or say why not (and take
    nothing: the caller rolls back)."""
    key = f"reward:{reward_key(reward)}"
    if reward.stock_total is not None and not _bump(key, "ever", reward.stock_total):
        return Refusal("out_of_stock", "已兑完", {"stock": reward.stock_total})
    per = reward.stock_per_count
    if reward.stock_per and per is not None and not _bump(key, use.stock_period, per):
        return Refusal(
            "out_of_stock",
            f"本{_per_text_of(reward.stock_per)}已兑完",
            {"stock_per_period": per, "period": use.stock_period},
        )
    if use.budget_period and reward.sponsor and not _spend(reward, use.budget_period):
        return Refusal(
            "out_of_stock",
            f"赞助方「{reward.sponsor}」本期预算已用完",
            {"sponsor": reward.sponsor, "period": use.budget_period},
        )
    return None


def _per_text_of(per) -> str:
    return {"day": "日", "week": "周", "month": "月", "year": "年"}.get(str(per), "期")


def _ensure(key: str, period: str) -> None:
    insert_ = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert_(RewardUsage)
        .values(key=key, period=period, count=0, points=0, yuan=0)
        .on_conflict_do_nothing(index_elements=["key", "period"])
    )


def _bump(key: str, period: str, limit: int) -> bool:
    """count += 1 if it stays within ``limit``; whether it did (one row lock, no race)."""
    u = RewardUsage.__table__.c
    stmt = (
        update(RewardUsage)
        .where(u.key == key, u.period == period, u.count < limit)
        .values(count=u.count + 1)
        .execution_options(synchronize_session=False)
    )
    return _update_or_create(stmt, key, period)


def _update_or_create(stmt, key: str, period: str) -> bool:
    """Run a conditional update of a usage row; if it changed nothing because the row does
    not exist yet (the period's first redemption), create the row and run it again."""
    if db.session.execute(stmt).rowcount == 1:
        return True
    _ensure(key, period)
    return db.session.execute(stmt).rowcount == 1


def _spend(reward: Reward, period: str) -> bool:
    key = f"sponsor:{reward.sponsor}"
    u = RewardUsage.__table__.c
    cond = [u.key == key, u.period == period]
    if reward.budget_points is not None:
        cond.append(u.points + reward.cost <= reward.budget_points)
    if reward.budget_yuan is not None:
        cond.append(u.yuan + (reward.yuan_per_item or 0) <= reward.budget_yuan)
    stmt = (
        update(RewardUsage)
        .where(*cond)
        .values(
            count=u.count + 1,
            points=u.points + reward.cost,
            yuan=u.yuan + (reward.yuan_per_item or 0),
        )
        .execution_options(synchronize_session=False)
    )
    return _update_or_create(stmt, key, period)


def _give_back(r: Redemption) -> None:
    u = RewardUsage.__table__.c
    key = f"reward:{r.reward}"
    # the order _take took them in (the total first), so a refund and a redemption of the
    # same reward never wait for each other in a cycle; a total is kept beside a per-period
    # stock (a missing row is simply not there to update)
    periods = ["ever", r.stock_period] if r.stock_period not in (None, "ever") else ["ever"]
    for period in periods if r.stock_period else ():
        db.session.execute(
            update(RewardUsage)
            .where(u.key == key, u.period == period, u.count > 0)
            .values(count=u.count - 1)
            .execution_options(synchronize_session=False)
        )
    if r.sponsor and r.budget_period:
        db.session.execute(
            update(RewardUsage)
            .where(u.key == f"sponsor:{r.sponsor}", u.period == r.budget_period)
            .values(count=u.count - 1, points=u.points - r.cost, yuan=u.yuan - (r.yuan or 0))
            .execution_options(synchronize_session=False)
        )


def _new_code() -> str:
    for _ in range(10):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if db.session.scalar(select(Redemption.id).where(Redemption.code == code)) is None:
            return code
    raise RuntimeError("could not draw a free redemption code")  # pragma: no cover


QR_SCALE, QR_BORDER = 6, 2  # pixels per module; modules of quiet zone


def qr_png(code: str) -> bytes:
    """The redemption code as a PNG QR image, to show (or scan) at the station."""
    buf = io.BytesIO()
    segno.make(code, error="m").save(buf, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return buf.getvalue()


def qr_size(code: str) -> int:
    """The width (and height) of ``qr_png(code)`` in pixels."""
    return segno.make(code, error="m").symbol_size(scale=QR_SCALE, border=QR_BORDER)[0]


def find_redemption(code: str) -> Redemption:
    r = db.session.scalar(select(Redemption).where(Redemption.code == code.strip().upper()))
    if r is None:
        raise NotFound(f"no redemption {code!r}", {"code": code}, "unknown_redemption")
    return r


def _claim(r: Redemption, status: RedemptionStatus, by: str, now: dt.datetime) -> None:
    """Move a pending redemption to ``status``, unless someone else moved it first."""
    t = Redemption.__table__.c
    done = db.session.execute(
        update(Redemption)
        .where(t.id == r.id, t.status == RedemptionStatus.PENDING)
        .values(status=status, decided_at=now, decided_by=by)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        db.session.refresh(r)
        raise not_pending(r)
    r.status, r.decided_at, r.decided_by = status, now, by


_STATUS_TEXT = {"pending": "等待领取", "confirmed": "领取", "cancelled": "取消",
                "expired": "过期，积分已退回"}  # fmt: skip


def confirm(r: Redemption, by: str, now: dt.datetime | None = None) -> Redemption:
    """Pickup at the station. A redemption past its time is expired and refunded instead
    (its status says which); one already decided raises ``Conflict``."""
    now = now or utcnow()
    if r.status == RedemptionStatus.PENDING and r.expires_at and r.expires_at <= now:
        refund(r, RedemptionStatus.EXPIRED, "expiry", now)
        return r
    _claim(r, RedemptionStatus.CONFIRMED, by, now)
    db.session.flush()
    return r


def not_pending(r: Redemption) -> Conflict:
    return Conflict(f"兑换码 {r.code} 已{_STATUS_TEXT[r.status]}",
                    {"code": r.code, "status": r.status}, "not_pending")  # fmt: skip


def refund(r: Redemption, status: RedemptionStatus, by: str, now: dt.datetime | None = None
           ) -> int:  # fmt: skip
    """Cancel or expire a pending redemption: points back (a ``refund`` entry), stock and
    budget back. Returns the member's new balance."""
    now = now or utcnow()
    state = ledger.lock_members([r.member_id])[r.member_id]
    _claim(r, status, by, now)
    _give_back(r)
    writer = ledger.LedgerWriter(states={r.member_id: state})
    what = "取消" if status == RedemptionStatus.CANCELLED else "逾期未领取"
    writer.append(
        r.member_id,
        r.cost,
        LedgerKind.REFUND,
        org_code=r.org_code,
        category="other",
        created_at=now,
        occurred_at=now,
        rules_version=r.rules_version,
        reason=f"兑换「{r.name}」{what}，退回 {r.cost} 分（兑换码 {r.code}）",
        explanation={"reward": r.reward, "code": r.code, "status": str(status)},
        ref=f"redemption:{r.code}",
    )
    (entry,) = ledger.write(writer)
    r.refund_entry_id = entry["id"]
    db.session.flush()
    return state.balance


def expire_due(now: dt.datetime | None = None, limit: int = 500) -> int:
    """Expire and refund pending redemptions past their pickup time (oldest first, at most
    ``limit``, each in its own savepoint); how many."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(Redemption)
            .where(Redemption.status == RedemptionStatus.PENDING, Redemption.expires_at <= now)
            .order_by(Redemption.expires_at)
            .limit(limit)
        )
    )
    # every member of the batch locked first, in id order: a refund takes stock rows, and a
    # redemption waiting for one of those must not hold a member this batch locks later
    ledger.lock_members([r.member_id for r in due])
    done = 0
    for r in due:
        try:
            with db.session.begin_nested():
                refund(r, RedemptionStatus.EXPIRED, "expiry", now)
            done += 1
        except Conflict:  # confirmed or cancelled meanwhile
            continue
    return done


def may_handle(partner, r: Redemption) -> bool:
    """A partner may confirm pickups at the stations it serves."""
    return partner.may_report_for(r.org_code)


def check_station(partner, r: Redemption) -> None:
    if not may_handle(partner, r):
        raise Forbidden(f"this partner does not serve {r.org_code}", {"org": r.org_code},
                        "org_not_allowed")  # fmt: skip


def sponsor_spend(rules: RuleSet, org: str, period: str | None = None) -> list[dict]:
    """What each sponsor of rewards at ``org`` and below has paid for, by period."""
    sponsors = {r.sponsor for r in catalogue(rules, org) if r.sponsor}
    if not sponsors:
        return []
    query = select(RewardUsage).where(RewardUsage.key.in_([f"sponsor:{s}" for s in sponsors]))
    if period:
        query = query.where(RewardUsage.period == period)
    return [
        {"sponsor": u.key.removeprefix("sponsor:"), "period": u.period, "redemptions": u.count,
         "points": u.points, "yuan": float(u.yuan)}
        for u in db.session.scalars(query.order_by(RewardUsage.key, RewardUsage.period))
    ]  # fmt: skip
