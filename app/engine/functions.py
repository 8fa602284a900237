"""The functions rule expressions may call, and the number helpers they share.

Each function checks its arguments and raises ``EvalError`` (never a bare TypeError) on
misuse, so a bad event skips one rule instead of failing the evaluation. A new function is
one definition here plus one entry in ``FUNCTIONS``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

NUMBER = (int, float)  # exact types: bool is not a number here


class EvalError(Exception):
    """An expression that failed on one event (a missing field in arithmetic, division by 0)."""


def is_num(x) -> bool:
    return (type(x) is int or type(x) is float) and x == x


def need_num(name: str, *xs):
    for x in xs:
        if not is_num(x):
            raise EvalError(f"{name} needs numbers, got {x!r}")


def _within(org, ancestor) -> bool:
    if not isinstance(org, str) or not isinstance(ancestor, str):
        raise EvalError("within() needs two organisation codes")
    return org == ancestor or org.startswith(ancestor + ".")


def _any_within(orgs, ancestor) -> bool:
    if not isinstance(orgs, list | tuple | frozenset):
        raise EvalError("any_within() needs a list of organisation codes")
    return any(_within(o, ancestor) for o in orgs)


def _min(*xs):
    if len(xs) == 2:
        a, b = xs
        if type(a) in NUMBER and type(b) in NUMBER:
            return a if a <= b else b
    if len(xs) == 1 and isinstance(xs[0], list | tuple | frozenset):
        xs = tuple(xs[0])
    if not xs:
        raise EvalError("min() of nothing")
    need_num("min()", *xs)
    return min(xs)


def _max(*xs):
    if len(xs) == 2:
        a, b = xs
        if type(a) in NUMBER and type(b) in NUMBER:
            return a if a >= b else b
    if len(xs) == 1 and isinstance(xs[0], list | tuple | frozenset):
        xs = tuple(xs[0])
    if not xs:
        raise EvalError("max() of nothing")
    need_num("max()", *xs)
    return max(xs)


def _clamp(x, lo, hi):
    need_num("clamp()", x, lo, hi)
    return max(lo, min(hi, x))


def _abs(x):
    need_num("abs()", x)
    return abs(x)


def _floor(x):
    need_num("floor()", x)
    return math.floor(x)


def _ceil(x):
    need_num("ceil()", x)
    return math.ceil(x)


def _round(x, digits=0):
    need_num("round()", x, digits)
    return round_half_up(x, int(digits))


def _len(x):
    if not isinstance(x, str | list | tuple | frozenset):
        raise EvalError("len() needs text or a list")
    return len(x)


def _lower(x):
    if not isinstance(x, str):
        raise EvalError("lower() needs text")
    return x.lower()


def _startswith(x, prefix):
    if not isinstance(x, str) or not isinstance(prefix, str):
        raise EvalError("startswith() needs text")
    return x.startswith(prefix)


def _hours_between(start, end):
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        raise EvalError("hours_between() needs two date-times")
    return (end - start).total_seconds() / 3600


def _default(x, fallback):
    return fallback if x is None else x


# name -> (function, min args, max args, description)
FUNCTIONS: dict[str, tuple[Callable, int, int, str]] = {
    "min": (_min, 1, 20, "smallest of its arguments"),
    "max": (_max, 1, 20, "largest of its arguments"),
    "clamp": (_clamp, 3, 3, "clamp(x, low, high)"),
    "abs": (_abs, 1, 1, "absolute value"),
    "floor": (_floor, 1, 1, "round down to a whole number"),
    "ceil": (_ceil, 1, 1, "round up to a whole number"),
    "round": (_round, 1, 2, "round half up, optionally to N decimals"),
    "len": (_len, 1, 1, "length of text or a list"),
    "lower": (_lower, 1, 1, "text in lower case"),
    "startswith": (_startswith, 2, 2, "startswith(text, prefix)"),
    "within": (_within, 2, 2, "within(org, 'sx.ty'): org is sx.ty or below it"),
    "any_within": (_any_within, 2, 2, "any_within(member.orgs, 'sx.ty')"),
    "hours_between": (_hours_between, 2, 2, "hours from one date-time to another"),
    "default": (_default, 2, 2, "default(x, fallback): fallback when x is null"),
}


def round_half_up(x: float, digits: int = 0) -> float | int:
    """Round halves away from zero (2.5 → 3), not to even as Python's ``round`` does.

    A tiny epsilon absorbs binary noise, so 0.1 * 3 * 5 (= 1.5000000000000002) and 1.4999999999
    both behave as people expect from the written numbers.
    """
    scale = 10**digits
    y = abs(x) * scale
    r = math.floor(y + 0.5 + 1e-9)
    r = r if x >= 0 else -r
    return r if digits == 0 else r / scale


def format_number(x) -> str:
    """Show 3.0 as '3' and 2.5 as '2.5' (at most two decimals)."""
    t = type(x)
    if t is int:
        return str(x)
    if t is float:
        if x.is_integer():
            return str(int(x))
        return f"{x:.2f}".rstrip("0").rstrip(".")
    if t is bool:
        return "true" if x else "false"
    if isinstance(x, dt.datetime):
        return x.strftime("%Y-%m-%d %H:%M")
    if x is None:
        return "null"
    return str(x)
