"""Levels and badges: what a member's activity and points turn into, decided as they change.

``Achievements`` works beside a ``LedgerWriter`` in the transaction that writes a member's
ledger, under that member's lock (or version check): ``record_event`` adds an accepted event to
the member's progress, ``settle`` grants every badge and level the member now qualifies for,
each with its bonus as a ``bonus`` ledger entry, until nothing more changes (a bonus can lift a
level, a level's bonus can complete a points badge). What it decided is in ``grants`` and
``level_changes``, rows the store inserts with the ledger; how many grants a member holds of
each badge is kept in the progress (``b``), so exactly-once needs no extra read, and the
unique (member, badge, n) constraint backs it up.

Badges in force for a member: those defined at the member's primary organisation and its
ancestors, and at the member's industry committee and above. Levels: the ladder of the
nearest organisation at or above the primary organisation that defines one; a level is never
lowered by spending.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

from ..engine import MemberFacts, RuleSet
from ..engine.badges import BADGE_KINDS, grants_due
from ..engine.model import Badge, EventType, Level
from ..engine.ruleset import ancestors, industry_org
from ..models import LedgerKind
from .ledger import LedgerWriter, MemberState

# how a reason names a summed field and its unit; others by their own name
FIELD_LABELS = {"hours": ("时长", ""), "km": ("里程", ""), "minutes": ("时长", "")}
UNIT_TEXT = {"hours": " 小时", "km": " 公里", "minutes": " 分钟", "people": " 人", "count": " 次"}
SETTLE_ROUNDS = 20  # bonuses feeding levels feeding badges: far more than any ladder needs
BONUS_CATEGORY = "other"


def badge_key(badge: Badge) -> str:
    return f"{badge.org}:{badge.id}"


def badges_in_force(rules: RuleSet, facts: MemberFacts) -> list[Badge]:
    """Badges of the member's primary organisation's chain and of its industry's, once each."""
    seen: dict[str, Badge] = {}
    for b in rules.badges_for(facts.primary_org):
        seen.setdefault(badge_key(b), b)
    if facts.industry:
        for b in rules.badges_for(industry_org(facts.industry)):
            seen.setdefault(badge_key(b), b)
    return list(seen.values())


def month_number(local: dt.date) -> int:
    return local.year * 12 + local.month - 1


def week_number(local: dt.date) -> int:
    return (local - dt.timedelta(days=local.weekday())).toordinal() // 7


@dataclass
class Trigger:
    """What made a member's standing change: an event (with its day), or a job."""

    org: str
    occurred_at: dt.datetime
    event_ref: str | None = None  # the partner's event id, as explanations name it
    event_title: str = ""
    period: str | None = None  # rank badges: the closed period
    link: object = None  # the event's key for the store to link rows to (ingest)


@dataclass
class Achievements:
    rules: RuleSet
    writer: LedgerWriter
    now: dt.datetime
    grants: list[dict] = field(default_factory=list)
    level_changes: list[dict] = field(default_factory=list)

    def record_event(
        self,
        state: MemberState,
        etype: EventType,
        data: dict,
        local: dt.datetime,
        emergency: bool,
        earned: dict[str, int],
    ) -> None:
        """Count one accepted event in the member's progress (``earned``: points by
        category it was credited)."""
        count_event(state.progress, etype.name, etype.fields, data, local.date(), emergency)
        self.add_earned(state, earned)

    @staticmethod
    def add_earned(state: MemberState, earned: dict[str, int]) -> None:
        cat = state.progress.setdefault("cat", {})
        for category, points in earned.items():
            if points:
                cat[category] = cat.get(category, 0) + points

    def settle(self, state: MemberState, facts: MemberFacts, trigger: Trigger) -> None:
        """Grant what the member now qualifies for, each bonus included, until stable."""
        badges = [b for b in badges_in_force(self.rules, facts) if BADGE_KINDS[b.kind].measure]
        ladder = self.rules.levels_for(facts.primary_org)
        for _ in range(SETTLE_ROUNDS):
            changed = self._levels(state, facts, ladder, trigger)
            for badge in badges:
                changed |= self._badge(state, facts, badge, trigger)
            if not changed:
                return

    def grant(self, state: MemberState, badge: Badge, trigger: Trigger, reason: str,
              explanation: dict) -> None:  # fmt: skip
        """Record the member's next grant of ``badge`` (and its bonus)."""
        held = state.progress.setdefault("b", {})
        key = badge_key(badge)
        n = held.get(key, 0) + 1
        held[key] = n
        self.grants.append(
            {
                "member_id": state.id,
                "badge": key,
                "n": n,
                "granted_at": self.now,
                "reason": reason,
                "explanation": explanation | {"rules_version": self.rules.version},
                "bonus": badge.bonus,
                "period": trigger.period,
                "rules_version": self.rules.version,
                "event_ref": trigger.link,
            }
        )
        if badge.bonus:
            self._bonus(state, badge.bonus, trigger, f"获得徽章「{badge.name}」奖励",
                        {"badge": key, "n": n}, f"badge:{key}#{n}")  # fmt: skip

    def _badge(self, state, facts, badge: Badge, trigger: Trigger) -> bool:
        params = badge.params
        value = BADGE_KINDS[badge.kind].measure(params, state.progress, state.lifetime)
        due = grants_due(params["at_least"], badge.repeat_every, badge.repeat_max, value)
        held = state.progress.get("b", {}).get(badge_key(badge), 0)
        if due <= held:
            return False
        for _ in range(due - held):
            n = state.progress.get("b", {}).get(badge_key(badge), 0) + 1
            threshold = params["at_least"] + (n - 1) * (badge.repeat_every or 0)
            self.grant(
                state,
                badge,
                trigger,
                self._reason(badge, threshold, trigger),
                {"kind": badge.kind, "threshold": threshold, "value": value,
                 "event": trigger.event_ref, "day": self._day(trigger)},
            )  # fmt: skip
        return True

    def _levels(self, state: MemberState, facts, ladder: tuple[Level, ...], trigger) -> bool:
        if not ladder:
            return False
        ids = [lv.id for lv in ladder]
        at = ids.index(state.level) if state.level in ids else -1
        reached = max(
            (i for i, lv in enumerate(ladder) if lv.min_points <= state.lifetime), default=-1
        )
        if reached <= at:
            return False
        for i in range(at + 1, reached + 1):
            level = ladder[i]
            self.level_changes.append(
                {
                    "member_id": state.id,
                    "from_level": state.level,
                    "to_level": level.id,
                    "at": self.now,
                    "lifetime_points": state.lifetime,
                    "bonus": level.bonus,
                    "ladder_org": ladder_org(self.rules, facts.primary_org),
                    "rules_version": self.rules.version,
                    "event_ref": trigger.link,
                }
            )
            state.level = level.id
            if level.bonus:
                self._bonus(state, level.bonus, trigger, f"升级为「{level.name}」奖励",
                            {"level": level.id}, f"level:{level.id}")  # fmt: skip
        return True

    def _bonus(self, state, points: int, trigger: Trigger, text: str, explanation: dict,
               ref: str) -> None:  # fmt: skip
        self.writer.append(
            state.id,
            points,
            LedgerKind.BONUS,
            org_code=trigger.org,
            category=BONUS_CATEGORY,
            occurred_at=trigger.occurred_at,
            created_at=self.now,
            rules_version=self.rules.version,
            reason=f"{text} {points} 分",
            explanation=explanation,
            ref=ref,
            event_ref=trigger.link,
        )
        self.add_earned(state, {BONUS_CATEGORY: points})

    def _day(self, trigger: Trigger) -> str:
        return trigger.occurred_at.astimezone(self.rules.tz).date().isoformat()

    def _field_label(self, params: dict) -> str:
        """ "志愿服务时长" for hours of one type; "时长" over several."""
        field = params["field"]
        label = FIELD_LABELS.get(field, (field, ""))[0]
        types = params["types"]
        if len(types) == 1:
            (only,) = types
            return self.rules.event_types[only].title + label
        return label

    def _field_unit(self, params: dict) -> str:
        specs = [self.rules.event_types[t].fields.get(params["field"]) for t in params["types"]]
        unit = next((f.unit for f in specs if f is not None and f.unit), "")
        return UNIT_TEXT.get(unit, f" {unit}" if unit else "")

    def _reason(self, badge: Badge, threshold: float, trigger: Trigger) -> str:
        """Why, for the rider: "第 10 次党员先锋岗值守（2026-11-20）"."""
        day = self._day(trigger)
        params = badge.params
        t = _number(threshold)
        kind = badge.kind
        if kind == "event_count":
            (only,) = params["types"] if len(params["types"]) == 1 else (None,)
            what = self.rules.event_types[only].title if only else "活动"
            return f"第 {t} 次{what}（{day}）"
        if kind == "field_sum":
            return f"累计{self._field_label(params)}达到 {t}{self._field_unit(params)}（{day}）"
        if kind == "months_active":
            return f"累计 {t} 个月有活动（{day}）"
        if kind == "week_streak":
            return f"连续 {t} 周有活动（{day}）"
        if kind == "emergency":
            return f"第 {t} 次应急任务（{day}）"
        if kind == "points_total":
            return f"累计积分达到 {t}（{day}）"
        return f"{badge.name}（{day}）"


def ladder_org(rules: RuleSet, primary: str | None) -> str:
    """The organisation whose file defines the ladder in force (nearest with ``levels``)."""
    for code in ancestors(primary) if primary else ():
        f = rules.files.get(code)
        if f is not None and f.levels:
            return code
    return ""


def count_event(progress: dict, type_name: str, fields: dict, data: dict, local: dt.date,
                emergency: bool) -> None:  # fmt: skip
    """Add one accepted event to ``progress`` (see ``engine.badges`` for its shape): its
    type, the number fields of ``fields`` it carries, its month and week, and whether it was
    in an emergency. The one way progress is counted, live and when recomputed."""
    counts = progress.setdefault("n", {})
    counts[type_name] = counts.get(type_name, 0) + 1
    sums = progress.setdefault("sum", {})
    for name, spec in fields.items():
        value = (data or {}).get(name)
        if spec.type in ("number", "integer") and type(value) in (int, float):
            key = f"{type_name}|{name}"
            sums[key] = _tidy(sums.get(key, 0) + value)
    _add_sorted(progress.setdefault("m", []), month_number(local))
    _add_sorted(progress.setdefault("w", []), week_number(local))
    if emergency:
        em = progress.setdefault("em", {})
        em[type_name] = em.get(type_name, 0) + 1


def _add_sorted(numbers: list[int], x: int) -> None:
    i = bisect.bisect_left(numbers, x)
    if i == len(numbers) or numbers[i] != x:
        numbers.insert(i, x)


def _tidy(x: float) -> float:
    """Sums of decimal hours without float dust: 0.1 + 0.2 is kept as 0.3."""
    return round(x, 6) if isinstance(x, float) else x


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
