"""Periods in the deployment's time zone: day, week (from Monday), month, year, ever.

Period keys are text so they can name counter rows and Redis keys alike:
``day:2026-11-20``, ``week:2026-W47`` (ISO week, which starts on Monday), ``month:2026-11``,
``year:2026``, ``ever``.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .model import Per

DEFAULT_TIMEZONE = "Asia/Shanghai"


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for a name, raising ``ValueError`` with a readable message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def period_key(per: Per | str, local: dt.datetime | dt.date) -> str:
    """The key of the period of kind ``per`` that contains ``local`` (already in local time)."""
    # Cached by plain text: hashing an Enum member runs Python code, a str's hash is cached.
    return period_key_ymd(str(per), local.year, local.month, local.day)


@lru_cache(maxsize=8192)
def period_key_ymd(per: str, year: int, month: int, day: int) -> str:
    local = dt.date(year, month, day)
    if per == "day":
        return f"day:{local:%Y-%m-%d}"
    if per == "week":
        year, week, _ = local.isocalendar()
        return f"week:{year}-W{week:02d}"
    if per == "month":
        return f"month:{local:%Y-%m}"
    if per == "year":
        return f"year:{local:%Y}"
    if per == "ever":
        return "ever"
    raise ValueError(f"unknown period {per!r}")


def period_keys(local: dt.datetime | dt.date) -> dict[Per, str]:
    """Every period key for one local moment."""
    return {per: period_key(per, local) for per in Per}


def period_start(per: Per, local: dt.date) -> dt.date | None:
    """First local day of the period containing ``local`` (None for ``ever``)."""
    if per is Per.DAY:
        return local
    if per is Per.WEEK:
        return local - dt.timedelta(days=local.weekday())
    if per is Per.MONTH:
        return local.replace(day=1)
    if per is Per.YEAR:
        return local.replace(month=1, day=1)
    return None


def period_bounds(per: Per, local: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
    """The aware [start, end) of the period containing the local date ``local``."""
    start = period_start(per, local)
    if start is None:
        return None
    if per is Per.DAY:
        end = start + dt.timedelta(days=1)
    elif per is Per.WEEK:
        end = start + dt.timedelta(days=7)
    elif per is Per.MONTH:
        end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    else:
        end = start.replace(year=start.year + 1)
    return (
        dt.datetime.combine(start, dt.time(), tzinfo=tz),
        dt.datetime.combine(end, dt.time(), tzinfo=tz),
    )
