"""Score one event: pure and deterministic, no I/O.

The caller (the service, a worker, ``rules check``) gives the event, the member's facts, the
member's current cap counters and the emergency in force, and gets back the awards plus the
counter increments to store. Same inputs, same result.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import NamedTuple

from .explain import CapNote, Explanation, render
from .expr import Env, EvalError, format_number
from .format import MAX_POINTS
from .model import EmergencyFacts, EventFacts, MemberFacts, Per, Rule
from .periods import period_key, period_key_ymd
from .ruleset import RuleSet

CounterKey = tuple[str, str]  # (bucket, period key), e.g. ("sx:pioneer-shift", "day:2026-11-20")
_ZERO = (0, 0)


class EvalStatus(StrEnum):
    AWARDED = "awarded"  # at least one rule matched and awarded now (possibly 0 after caps)
    PENDING = "pending"  # at least one matching rule waits for confirmation
    NO_MATCH = "no_match"  # no rule matched


class Award(NamedTuple):
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


class Evaluation(NamedTuple):
    status: EvalStatus
    awards: tuple[Award, ...]
    counters: dict[CounterKey, tuple[int, int]]  # increments: (points, count) per counter
    version: str
    errors: tuple[str, ...] = ()  # rules skipped because their expression failed on this event
    stopped_by: str | None = None

    @property
    def points(self) -> int:
        return sum(a.points for a in self.awards)


def add_counters(
    counters: dict[CounterKey, tuple[int, int]], increments: Mapping[CounterKey, tuple[int, int]]
) -> None:
    """Add an evaluation's counter increments to ``counters`` (what a caller that stores
    counters, or replays a stream of events, does between two evaluations)."""
    for key, (points, count) in increments.items():
        old = counters.get(key)
        counters[key] = (old[0] + points, old[1] + count) if old else (points, count)


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
    env = Env(event, data, member, local, emergency, etype.units)
    today = local.date()
    deltas: dict[CounterKey, tuple[int, int]] = {}
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
        if (type(raw) is not int and type(raw) is not float) or raw != raw:
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
        deltas,
        ruleset.version,
        tuple(errors),
        stopped_by,
    )


def _score(rule, raw, env, emergency, local, counters, deltas, confirming) -> Award:
    multiplier = rule.multiplier if emergency is not None and rule.multiplier else None
    value = raw * multiplier if multiplier else raw
    # round half up (see expr.round_half_up), inlined: this runs for every award
    value = math.floor(value + 0.5 + 1e-9) if value >= 0 else -math.floor(-value + 0.5 + 1e-9)
    clamped = None
    if value < 0:
        value, clamped = 0, "negative"
    elif value > MAX_POINTS:
        value, clamped = MAX_POINTS, "maximum"
    points_expr = rule.points
    formula = str(points_expr.constant) if points_expr.is_constant else points_expr.render(env)
    emergency_name = emergency.name if multiplier else None
    if rule.verify and not confirming:
        expl = Explanation(
            rule.key, rule.name, rule.name_en, formula, points_expr.is_constant, value, 0,
            multiplier, emergency_name, (), True, clamped,
        )  # fmt: skip
        return Award(rule.key, rule.id, rule.org, rule.category, 0, True, expl)
    points = value
    notes = ()
    if rule.caps:
        # Pass 1: what each cap's counter holds, counting earlier awards of this evaluation.
        # A count cap refuses the award outright; a points cap cuts it to what is left.
        year, month, day = local.year, local.month, local.day
        seen = []
        for cap in rule.caps:
            key = (cap.bucket, period_key_ymd(cap.per_name, year, month, day))
            used_points, used_count = counters.get(key, _ZERO)
            extra = deltas.get(key)
            if extra is not None:
                used_points += extra[0]
                used_count += extra[1]
            if cap.count is not None:
                cut = used_count >= cap.count
                if cut:
                    points = 0
            else:
                left = cap.points - used_points
                cut = points > left
                if cut:
                    points = left if left > 0 else 0
            seen.append((cap, key, used_points, used_count, cut))
        # Pass 2: the notes need the final points; a later cap may have cut further.
        notes = []
        done = set()
        for cap, key, used_points, used_count, cut in seen:
            if cap.count is not None:
                left = cap.count - used_count - (1 if points else 0)
                notes.append(
                    CapNote(cap.per_name, "count", cap.count, used_count, max(left, 0), cut)
                )
            else:
                left = cap.points - used_points - points
                notes.append(
                    CapNote(cap.per_name, "points", cap.points, used_points, max(left, 0), cut)
                )
            if points and key not in done:
                done.add(key)
                d = deltas.get(key, _ZERO)
                deltas[key] = (d[0] + points, d[1] + 1)
        notes = tuple(notes)
    expl = Explanation(
        rule.key, rule.name, rule.name_en, formula, points_expr.is_constant, value, points,
        multiplier, emergency_name, notes, False, clamped,
    )  # fmt: skip
    return Award(rule.key, rule.id, rule.org, rule.category, points, False, expl)


__all__ = [
    "Award",
    "CounterKey",
    "EvalStatus",
    "Evaluation",
    "Per",
    "add_counters",
    "evaluate",
    "needed_counters",
]
