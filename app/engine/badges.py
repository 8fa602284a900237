"""Badge condition kinds: a registry, so a new kind is one function and one entry here.

Each kind names the parameters its condition takes (required and optional) and how to measure
it on a member's progress: the counters the service keeps on the member row (events by type,
sums of number fields, active months and weeks, emergency events, points by category). The
loader checks a badge's condition against its kind; ``grants_due`` says how many grants a
measured value is worth. ``rank`` has no measure: it is decided when a period closes.

Progress, as stored (JSON): ``{"n": {type: events}, "sum": {"type|field": total},
"m": [month numbers], "w": [week numbers], "em": {type: events in an emergency},
"cat": {category: points earned}}``; month number = year * 12 + month - 1, week number =
the ordinal of the week's Monday // 7, so consecutive weeks differ by one.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass

from .diagnostics import Reporter
from .model import EventType
from .ruleset import match_event_types
from .source import Pos

Measure = Callable[[dict, dict, int], float]  # (params, progress, lifetime points) -> value


def _event_count(params: dict, progress: dict, lifetime: int) -> float:
    counts = progress.get("n", {})
    return sum(counts.get(t, 0) for t in params["types"])


def _field_sum(params: dict, progress: dict, lifetime: int) -> float:
    sums = progress.get("sum", {})
    # decimal hours: 0.7 + 0.1 must reach a threshold of 0.8
    return round(sum(sums.get(f"{t}|{params['field']}", 0) for t in params["types"]), 6)


def _months_active(params: dict, progress: dict, lifetime: int) -> float:
    return len(progress.get("m", ()))


def _week_streak(params: dict, progress: dict, lifetime: int) -> float:
    return longest_run(progress.get("w", ()))


def _emergency(params: dict, progress: dict, lifetime: int) -> float:
    counts = progress.get("em", {})
    if "types" in params:
        return sum(counts.get(t, 0) for t in params["types"])
    return sum(counts.values())


def _points_total(params: dict, progress: dict, lifetime: int) -> float:
    if params.get("category"):
        return progress.get("cat", {}).get(params["category"], 0)
    return lifetime


def longest_run(numbers) -> int:
    """The longest run of consecutive integers in a sorted sequence."""
    best = run = 0
    prev = None
    for x in numbers:
        run = run + 1 if prev is not None and x == prev + 1 else 1
        best = max(best, run)
        prev = x
    return best


@dataclass(frozen=True)
class BadgeKind:
    description: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    measure: Measure | None = None  # None: granted by a job (rank at period close)


BADGE_KINDS: dict[str, BadgeKind] = {
    "event_count": BadgeKind(
        "number of events of the given types", ("on", "at_least"), measure=_event_count
    ),
    "field_sum": BadgeKind(
        "sum of a numeric field over events (e.g. volunteer hours)",
        ("on", "field", "at_least"),
        measure=_field_sum,
    ),
    "months_active": BadgeKind(
        "distinct calendar months with any activity", ("at_least",), measure=_months_active
    ),
    "week_streak": BadgeKind(
        "consecutive weeks with activity", ("at_least",), measure=_week_streak
    ),
    "rank": BadgeKind(
        "a rank reached on one of the member's boards when a period closes",
        ("board", "period", "top"),
        ("category",),
    ),
    "emergency": BadgeKind(
        "events during a declared emergency", ("at_least",), ("on",), measure=_emergency
    ),
    "points_total": BadgeKind(
        "lifetime points", ("at_least",), ("category",), measure=_points_total
    ),
}


def grants_due(at_least: float, every: float | None, most: int | None, value: float) -> int:
    """How many grants ``value`` is worth: none below ``at_least``; one at it; a repeatable
    badge one more for every ``every`` beyond it, at most ``most``."""
    if value < at_least - 1e-9:  # sums of decimals a hair under their threshold still reach it
        return 0
    if not every:
        return 1
    n = 1 + math.floor((value - at_least) / every + 1e-9)
    return min(n, most) if most else n


def check_condition(
    cond: dict, pos: Pos, rep: Reporter, event_types: dict[str, EventType]
) -> dict | None:
    """Return the condition's parameters, or None after reporting what is wrong."""
    kind_name = cond.get("kind")
    kind = BADGE_KINDS.get(kind_name)
    if kind is None:
        near = difflib.get_close_matches(str(kind_name), list(BADGE_KINDS), n=1)
        tip = f" (did you mean {near[0]!r}?)" if near else ""
        rep.error(pos, f"unknown badge kind {kind_name!r}{tip}; known: {', '.join(BADGE_KINDS)}")
        return None
    params = {k: v for k, v in cond.items() if k != "kind"}
    ok = True
    for key in kind.required:
        if key not in params:
            rep.error(pos, f"badge kind {kind_name} needs {key!r}")
            ok = False
    for key in params:
        if key not in kind.required and key not in kind.optional:
            rep.error(pos, f"badge kind {kind_name} does not take {key!r}")
            ok = False
    if not ok:
        return None
    if "on" in params:
        patterns = (params["on"],) if isinstance(params["on"], str) else tuple(params["on"])
        types = set()
        for pattern in patterns:
            found = match_event_types(pattern, event_types)
            if not found:
                rep.error(pos, f"badge condition on: {pattern!r} matches no declared event type")
                return None
            types |= found
        params["types"] = frozenset(types)
        if "field" in params:
            for t in sorted(types):
                f = event_types[t].fields.get(params["field"])
                if f is None or f.type not in ("number", "integer"):
                    rep.error(pos, f"badge field {params['field']!r} is not a number field of {t}")
                    return None
    return params
