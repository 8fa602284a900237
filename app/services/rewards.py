"""Rewards: the catalogue, who may redeem what, redemption, pickup, cancellation and expiry.

A reward is defined in its organisation's rules file; what has been taken is database state.
A redemption is one transaction: the member's row is locked, eligibility and the balance are
checked, the stock and the sponsor's budget are taken with conditional updates (so two members
racing for the last item cannot both get it), and a ``redeem`` ledger entry takes the points.
Cancelling or expiring gives the points back with a ``refund`` entry and the stock and budget
back to the counters the redemption took them from. Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
from dataclasses import dataclass

import segno
from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..engine import MemberFacts, RuleSet
from ..engine.model import Reward
from ..engine.periods import period_key
from ..engine.ruleset import ancestors
from ..errors import Conflict, Forbidden, NotFound
from ..extensions import db
from ..models import (
    LedgerKind,
    Member,
    Redemption,
    RedemptionStatus,
    RewardUsage,
)
from ..models.base import utcnow
from . import ledger
from .achievements import badge_key, badges_in_force
from .members import member_codes

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a counter
CODE_LENGTH = 8
HELD = (RedemptionStatus.PENDING, RedemptionStatus.CONFIRMED)  # what counts against limits


def reward_key(reward: Reward) -> str:
    return f"{reward.org}:{reward.id}"


def find_reward(rules: RuleSet, key: str) -> Reward:
    """The reward ``<org>:<id>``, or 404."""
    org, _, rid = key.rpartition(":")
    for r in rules.rewards_at(org):
        if r.id == rid:
            return r
    raise NotFound(f"no reward {key!r}", {"reward": key}, "unknown_reward")


def catalogue(rules: RuleSet, org: str) -> list[Reward]:
    """Rewards offered at ``org`` and at every organisation below it."""
    return [
        r
        for code, f in sorted(rules.files.items())
        if code == org or code.startswith(org + ".")
        for r in f.rewards
    ]


@dataclass(frozen=True)
class Refusal:
    code: str  # not_eligible, insufficient_points, out_of_stock, limit_reached
    message: str
    details: dict


def facts_of(member: Member) -> MemberFacts:
    return MemberFacts(
        party_member=member.party_member,
        industry=member.industry,
        level=member.level,
        primary_org=member.primary_org.code,
        orgs=tuple(member_codes(member)),
        tags=frozenset(member.tags or ()),
    )


def eligibility(rules: RuleSet, reward: Reward, facts: MemberFacts, progress: dict,
                today: dt.date) -> Refusal | None:  # fmt: skip
    """Why the member may not redeem ``reward`` (None: they may), stock and balance aside."""
    if reward.valid_from and today < reward.valid_from:
        return Refusal("not_eligible", f"可兑换时间从 {reward.valid_from} 开始",
                       {"valid_from": reward.valid_from.isoformat()})  # fmt: skip
    if reward.valid_until and today > reward.valid_until:
        return Refusal("not_eligible", f"兑换已于 {reward.valid_until} 结束",
                       {"valid_until": reward.valid_until.isoformat()})  # fmt: skip
    if reward.min_level:
        ladder = [lv.id for lv in rules.levels_for(reward.org)]
        need = ladder.index(reward.min_level) if reward.min_level in ladder else 0
        # no level yet (points only from adjustments): the foot of the ladder, which is 0
        have = ladder.index(facts.level) if facts.level in ladder else 0
        if have < need:
            return Refusal("not_eligible", f"需要达到「{_level_name(rules, reward)}」等级",
                           {"min_level": reward.min_level, "level": facts.level})  # fmt: skip
    if reward.party_member_only and not facts.party_member:
        return Refusal("not_eligible", "仅限党员兑换", {"party_member": True})
    if reward.subtree and not any(
        o == reward.subtree or o.startswith(reward.subtree + ".") for o in facts.orgs
    ):
        return Refusal(
            "not_eligible", "仅限本组织及下属组织的成员兑换", {"subtree": reward.subtree}
        )
    if reward.industry and facts.industry != reward.industry:
        return Refusal("not_eligible", "仅限本行业成员兑换", {"industry": reward.industry})
    if reward.badge:
        held = progress.get("b", {})
        keys = {
            badge_key(b)
            for b in badges_in_force(rules, facts)
            if b.id == reward.badge and b.org in ancestors(reward.org)
        } or {f"{org}:{reward.badge}" for org in ancestors(reward.org)}
        if not any(held.get(k) for k in keys):
            return Refusal("not_eligible", "需要先获得指定徽章", {"badge": reward.badge})
    return None


def _level_name(rules: RuleSet, reward: Reward) -> str:
    for lv in rules.levels_for(reward.org):
        if lv.id == reward.min_level:
            return lv.name
    return reward.min_level or ""


@dataclass(frozen=True)
class Usage:
    """What a redemption takes (and a refund gives back): (key, period) counters."""

    stock_period: str | None  # "ever" for a total, or the per-period key, or None
    limit_period: str
    budget_period: str | None


def usage_periods(reward: Reward, local: dt.datetime) -> Usage:
    stock = None
    if reward.stock_per:
        stock = period_key(reward.stock_per, local)
    elif reward.stock_total is not None:
        stock = "ever"
    # a sponsor's spend is kept per budget period, or per month when it set no budget
    budget_per = reward.budget_per or "month"
    return Usage(
        stock,
        period_key(reward.limit_per, local) if reward.limit_per else "ever",
        period_key(budget_per, local) if reward.sponsor else None,
    )


def stock_left(reward: Reward, local: dt.datetime) -> int | None:
    """Items left now (the smaller of the total and this period's), None for unlimited."""
    return Counters([reward], local).stock_left(reward)


def budget_refusal(reward: Reward, local: dt.datetime) -> Refusal | None:
    """The refusal a redemption would meet now because the sponsor's budget is spent."""
    return Counters([reward], local).budget_refusal(reward)


def _counters_of(reward: Reward, use: Usage):
    """The (key, period) usage rows that say how much of ``reward`` is left now."""
    key = f"reward:{reward_key(reward)}"
    if reward.stock_total is not None:
        yield key, "ever"
    if reward.stock_per and reward.stock_per_count is not None:
        yield key, use.stock_period
    if reward.sponsor and reward.budget_per:
        yield f"sponsor:{reward.sponsor}", use.budget_period


class Counters:
    """The stock and budget counters of some rewards at one moment and, for a member, how many
    of each they hold against its limit: two queries however many rewards a catalogue lists
    (a read for display; ``redeem`` takes them again under its locks)."""

    def __init__(self, rewards_: list[Reward], local: dt.datetime, member_id: int | None = None):
        self.local = local
        self.member_id = member_id
        self.uses = {reward_key(r): usage_periods(r, local) for r in rewards_}
        wanted = {c for r in rewards_ for c in _counters_of(r, self.uses[reward_key(r)])}
        self._usage = {}
        if wanted:
            u = RewardUsage
            rows = db.session.execute(
                select(u.key, u.period, u.count, u.points, u.yuan).where(
                    u.key.in_(sorted({k for k, _ in wanted})),
                    u.period.in_(sorted({p for _, p in wanted})),
                )
            )
            self._usage = {(r.key, r.period): r for r in rows}
        self._held: dict[tuple[str, str], int] = {}
        if member_id is not None and self.uses:
            periods = sorted({u.limit_period for u in self.uses.values()})
            query = (
                select(Redemption.reward, Redemption.limit_period, func.count())
                .where(
                    Redemption.member_id == member_id,
                    Redemption.status.in_(HELD),
                    Redemption.limit_period.in_(periods),
                )
                .group_by(Redemption.reward, Redemption.limit_period)
            )
            self._held = {(reward, period): n for reward, period, n in db.session.execute(query)}

    def _count(self, key: str, period: str | None) -> int:
        row = self._usage.get((key, period))
        return row.count if row else 0

    def total_left(self, reward: Reward) -> int | None:
        """Items left of the total stock, None when there is no total."""
        if reward.stock_total is None:
            return None
        return max(0, reward.stock_total - self._count(f"reward:{reward_key(reward)}", "ever"))

    def period_left(self, reward: Reward) -> int | None:
        """Items left of this period's stock (today's, this week's...), None when unlimited."""
        if not reward.stock_per or reward.stock_per_count is None:
            return None
        period = self.uses[reward_key(reward)].stock_period
        used = self._count(f"reward:{reward_key(reward)}", period)
        return max(0, reward.stock_per_count - used)

    def stock_left(self, reward: Reward) -> int | None:
        """Items left now (the smaller of the total and this period's), None for unlimited."""
        left = [n for n in (self.total_left(reward), self.period_left(reward)) if n is not None]
        return min(left) if left else None

    def budget_refusal(self, reward: Reward) -> Refusal | None:
        """The refusal a redemption would meet now because the sponsor's budget is spent."""
        if not reward.sponsor or not reward.budget_per:
            return None
        period = self.uses[reward_key(reward)].budget_period
        used = self._usage.get((f"sponsor:{reward.sponsor}", period))
        points, yuan = (used.points, float(used.yuan)) if used else (0, 0.0)
        over = (
            reward.budget_points is not None and points + reward.cost > reward.budget_points
        ) or (
            reward.budget_yuan is not None
            and yuan + (reward.yuan_per_item or 0) > reward.budget_yuan + 1e-9
        )
        if not over:
            return None
        return Refusal(
            "out_of_stock",
            f"赞助方「{reward.sponsor}」本期预算已用完",
            {"sponsor": reward.sponsor, "period": period},
        )

    def held(self, reward: Reward) -> int:
        """The member's redemptions of ``reward`` that count against its limit now."""
        return self._held.get((reward_key(reward), self.uses[reward_key(reward)].limit_period), 0)


@dataclass(frozen=True)
class MemberView:
    """Whether a member may redeem a reward now, the first reason why not, and how many of it
    they hold against its limit."""

    refusal: Refusal | None
    redeemed: int

    @property
    def eligible(self) -> bool:
        return self.refusal is None


def member_views(rules: RuleSet, rewards_: list[Reward], member: Member, local: dt.datetime,
                 counters: Counters | None = None) -> dict[str, MemberView]:  # fmt: skip
    """Per reward key, whether ``member`` may redeem it now and if not why: the reasons
    ``redeem`` would give, in its order (eligibility, balance, limit, stock, the sponsor's
    budget). ``counters``, when the caller has read them for the same rewards and member,
    are used rather than read again."""
    if counters is None or counters.member_id != member.id:
        counters = Counters(rewards_, local, member.id)
    facts = facts_of(member)
    progress = member.progress or {}
    out = {}
    for r in rewards_:
        refusal = eligibility(rules, r, facts, progress, local.date())
        had = counters.held(r)
        if refusal is None and member.balance < r.cost:
            refusal = Refusal("insufficient_points", f"积分不足：需要 {r.cost} 分",
                              {"cost": r.cost, "balance": member.balance})  # fmt: skip
        if refusal is None and r.limit_count is not None and had >= r.limit_count:
            refusal = Refusal("limit_reached", "已达兑换次数上限",
                              {"limit": r.limit_count, "redeemed": had})  # fmt: skip
        if refusal is None and counters.stock_left(r) == 0:
            refusal = Refusal("out_of_stock", "已兑完", {})
        if refusal is None:
            refusal = counters.budget_refusal(r)
        out[reward_key(r)] = MemberView(refusal, had)
    return out


def member_view(rules: RuleSet, reward: Reward, member: Member, local: dt.datetime
                ) -> MemberView:  # fmt: skip
    """Whether ``member`` may redeem ``reward`` now and if not why (see ``member_views``)."""
    return member_views(rules, [reward], member, local)[reward_key(reward)]


def member_count(member_id: int, reward: Reward, period: str) -> int:
    """The member's redemptions of ``reward`` that count against its limit in ``period``."""
    return db.session.scalar(
        select(func.count()).where(
            Redemption.member_id == member_id,
            Redemption.reward == reward_key(reward),
            Redemption.limit_period == period,
            Redemption.status.in_(HELD),
        )
    )


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
