"""Badge condition kinds: a registry, so a new kind is one entry here.

Each kind names the parameters its condition takes (required and optional). The loader checks a
badge's condition against its kind; the counters that decide when a badge is earned are kept by
the service (issue: levels, badges and rewards), keyed by these same kinds.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .diagnostics import Reporter
from .model import EventType
from .ruleset import match_event_types
from .source import Pos


@dataclass(frozen=True)
class BadgeKind:
    description: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


BADGE_KINDS: dict[str, BadgeKind] = {
    "event_count": BadgeKind("number of events of the given types", ("on", "at_least")),
    "field_sum": BadgeKind(
        "sum of a numeric field over events (e.g. volunteer hours)", ("on", "field", "at_least")
    ),
    "months_active": BadgeKind("distinct calendar months with any activity", ("at_least",)),
    "week_streak": BadgeKind("consecutive weeks with activity", ("at_least",)),
    "rank": BadgeKind(
        "a rank reached on one of the member's boards when a period closes",
        ("board", "period", "top"),
        ("category",),
    ),
    "emergency": BadgeKind("events during a declared emergency", ("at_least",), ("on",)),
    "points_total": BadgeKind("lifetime points", ("at_least",), ("category",)),
}


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
