"""Score one event: pure and deterministic, no I/O.

The caller (the service, a worker, ``rules check``) gives the event, the member's facts, the
member's current cap counters and the emergency in force, and gets back the awards plus the
counter increments to store. Same inputs, same result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from .explain import CapNote, Explanation, render
from .expr import Env, EvalError, format_number, round_half_up
from .format import MAX_POINTS
from .model import EmergencyFacts, EventFacts, MemberFacts, Per, Rule
from .periods import period_key
from .ruleset import RuleSet

CounterKey = tuple[str, str]  # (bucket, period key), e.g. ("sx:pioneer-shift", "day:2026-11-20")
_ZERO = (0, 0)


class EvalStatus(StrEnum):
    AWARDED = "awarded"  # at least one rule matched and awarded now (possibly 0 after caps)
    PENDING = "pending"  # at least one matching rule waits for confirmation
    NO_MATCH = "no_match"  # no rule matched


@dataclass(frozen=True, slots=True)
class Award:
    rule: str  # the rule's stable key, "<org>:<id>"
    rule_id: str
    org: str  # organisation whose file gave the rule version used
    category: str
    points: int
    pending: bool
    explanation: Explanation

    @property
    def reason(self) -> str:
        return render(self.explanation, "zh")


@dataclass(frozen=True, slots=True)
class Evaluation:
    status: EvalStatus
    awards: tuple[Award, ...]
    counters: dict[CounterKey, tuple[int, int]]  # increments: (points, count) per counter
    version: str
    errors: tuple[str, ...] = ()  # rules skipped because their expression failed on this event
    stopped_by: str | None = None

    @property
    def points(self) -> int:
        return sum(a.points for a in self.awards)


def counter_keys(rules: tuple[Rule, ...], local: dt.datetime) -> set[CounterKey]:
    """The counters the caps of ``rules`` read for an event at local time ``local``."""
    return {(cap.bucket, period_key(cap.per, local)) for r in rules for cap in r.caps}


def needed_counters(ruleset: RuleSet, event: EventFacts, member: MemberFacts) -> set[CounterKey]:
    """Which counters ``evaluate`` will read for this event, so a caller can fetch just those."""
    rules = ruleset.rules_for(event.org, member.industry, event.type)
    return counter_keys(rules, event.occurred_at.astimezone(ruleset.tz))


def evaluate(
    ruleset: RuleSet,
    event: EventFacts,
    member: MemberFacts,
    counters: Mapping[CounterKey, tuple[int, int]] | None = None,
    emergency: EmergencyFacts | None = None,
    confirming: bool = False,
) -> Evaluation:
    """Score ``event`` under ``ruleset``.

    Rules are tried in ``RuleSet.rules_for`` order. A rule matches when its window holds, its
    emergency condition holds and its ``when`` is true; ``stop`` ends the search after a match.
    A ``verify`` rule gives a pending award (nothing credited) unless ``confirming`` is true:
    confirmation replays the same search and credits only the ``verify`` rules.
    Points: expression × emergency multiplier, rounded half up, clamped to [0, MAX_POINTS],
    then cut by every cap to what is left in its period.
    """
    counters = counters or {}
    if event.occurred_at.tzinfo is None:
        raise ValueError("event.occurred_at must be timezone-aware")
    local = event.occurred_at.astimezone(ruleset.tz)
    rules = ruleset.rules_for(event.org, member.industry, event.type)
    if not rules:
        return Evaluation(EvalStatus.NO_MATCH, (), {}, ruleset.version)
    etype = ruleset.event_types[event.type]
    defaults = etype.defaults
    data = {**defaults, **event.data} if defaults else event.data
    env = Env(
        {
            "type": event.type,
            "org": event.org,
            "partner": event.partner,
            "occurred_at": local.isoformat(),
        },
        data,
        {
            "party_member": member.party_member,
            "industry": member.industry or "",
            "level": member.level or "",
            "primary_org": member.primary_org or "",
            "orgs": list(member.orgs),
            "tags": list(member.tags),
        },
        {
            "emergency": emergency is not None,
            "emergency_kind": (emergency.kind if emergency else "") or "",
            "weekday": local.isoweekday(),
            "hour": local.hour,
            "date": local.date().isoformat(),
            "month": local.month,
        },
        {k: f.unit for k, f in etype.fields.items() if f.unit},
    )
    today = local.date()
    deltas: dict[CounterKey, list[int]] = {}
    awards: list[Award] = []
    errors: list[str] = []
    matched = pending = False
    stopped_by = None
    for rule in rules:
        if rule.active_from and today < rule.active_from:
            continue
        if rule.active_until and today > rule.active_until:
            continue
        if rule.emergency_only and emergency is None:
            continue
        try:
            if rule.when is not None and not rule.when.fn(env):
                continue
            raw = rule.points.fn(env)
        except (EvalError, TypeError, ValueError, ArithmeticError) as exc:
            errors.append(f"{rule.key}: {exc}")
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw:
            errors.append(f"{rule.key}: points gave {format_number(raw)!r}, not a number")
            continue
        matched = True
        if confirming and not rule.verify:
            pass  # credited when the event was first scored
        else:
            award = _score(rule, raw, env, emergency, local, counters, deltas, confirming)
            pending = pending or award.pending
            awards.append(award)
        if rule.stop:
            stopped_by = rule.key
            break
    if not matched:
        status = EvalStatus.NO_MATCH
    elif pending:
        status = EvalStatus.PENDING
    else:
        status = EvalStatus.AWARDED
    return Evaluation(
        status,
        tuple(awards),
        {k: (v[0], v[1]) for k, v in deltas.items()},
        ruleset.version,
        tuple(errors),
        stopped_by,
    )


def _score(rule, raw, env, emergency, local, counters, deltas, confirming) -> Award:
    multiplier = rule.multiplier if emergency is not None and rule.multiplier else None
    value = raw * multiplier if multiplier else raw
    value = round_half_up(value)
    clamped = None
    if value < 0:
        value, clamped = 0, "negative"
    elif value > MAX_POINTS:
        value, clamped = MAX_POINTS, "maximum"
    formula = rule.points.render(env)
    common = dict(
        rule=rule.key,
        name=rule.name,
        name_en=rule.name_en,
        formula=formula,
        constant=rule.points.is_constant,
        value=value,
        multiplier=multiplier,
        emergency=emergency.name if multiplier else None,
        clamped=clamped,
    )
    if rule.verify and not confirming:
        expl = Explanation(points=0, pending=True, **common)
        return Award(rule.key, rule.id, rule.org, rule.category, 0, True, expl)
    points = value
    seen = []  # (cap, counter key, points used before, count used before)
    for cap in rule.caps:
        key = (cap.bucket, period_key(cap.per, local))
        base = counters.get(key, _ZERO)
        extra = deltas.get(key) or _ZERO
        seen.append((cap, key, base[0] + extra[0], base[1] + extra[1]))
    # A count cap refuses the award outright; a points cap cuts it to what is left.
    for cap, _, _, used_count in seen:
        if cap.count is not None and used_count >= cap.count:
            points = 0
    cuts = []
    for cap, _, used_points, used_count in seen:
        if cap.points is not None:
            left = max(cap.points - used_points, 0)
            cuts.append(points > left)
            points = min(points, left)
        else:
            cuts.append(used_count >= cap.count)
    if points > 0:
        for key in dict.fromkeys(key for _, key, _, _ in seen):
            d = deltas.setdefault(key, [0, 0])
            d[0] += points
            d[1] += 1
    final_notes = []
    for (cap, _, used_points, used_count), cut in zip(seen, cuts, strict=True):
        if cap.points is not None:
            note = CapNote(
                cap.per.value,
                "points",
                cap.points,
                used_points,
                max(cap.points - used_points - points, 0),
                cut,
            )
        else:
            note = CapNote(
                cap.per.value,
                "count",
                cap.count,
                used_count,
                max(cap.count - used_count - (points > 0), 0),
                cut,
            )
        final_notes.append(note)
    expl = Explanation(points=points, caps=tuple(final_notes), **common)
    return Award(rule.key, rule.id, rule.org, rule.category, points, False, expl)


__all__ = [
    "Award",
    "CounterKey",
    "EvalStatus",
    "Evaluation",
    "Per",
    "evaluate",
    "needed_counters",
]
