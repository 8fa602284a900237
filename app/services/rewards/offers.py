"""What a member is offered: the catalogue, eligibility, what is left of each reward's stock
and its sponsor's budget, and whether a member may redeem a reward now (and why not)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from ...engine import MemberFacts, RuleSet
from ...engine.model import Reward
from ...engine.periods import period_key
from ...engine.ruleset import ancestors, within
from ...errors import NotFound
from ...extensions import db
from ...models import (
    Member,
    Redemption,
    RedemptionStatus,
    RewardUsage,
)
from ..achievements import badge_key, badges_in_force
from ..members import member_codes

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
    return [r for code, f in sorted(rules.files.items()) if within(code, org) for r in f.rewards]


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
    if reward.subtree and not any(within(o, reward.subtree) for o in facts.orgs):
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
