"""What a ledger entry counts towards: boards, their Redis keys, periods and scores.

A board ranks members by the points they earned in one *scope* over one *period* in one
*category*:

- scope: an organisation code. A regional organisation (``sx.ty.xiaodian``) ranks the points
  attributed to its whole subtree; an industry committee (``ind.transport``, and ``ind`` for all
  four) ranks the points of the members of its industry, wherever earned; ``partner:<code>``
  ranks the points a partner reported for its own members.
- period: ``2026-W48`` (ISO week, from Monday), ``2026-11``, ``2026`` or ``all``, in the
  deployment's time zone, by when the activity happened. Only the current and the previous
  period of each kind are live; older ones are read from their archive.
- category: ``total`` or one of the rules' categories.

Organisations are also ranked against their siblings: the board of ``sx.ty``'s children holds
each child's subtree total.

Keys carry a hash tag (``lb:{sx.ty|2026-11|total}``) so a board and its rebuild copy live on
the same Redis Cluster shard. A member's score is ``points + f``, where ``f`` in [0, 1) falls as
the moment the total was last changed grows: members with equal points are listed in the order
they reached them, and ``floor(score)`` is always the points.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from dataclasses import dataclass
from enum import StrEnum

from ...engine.model import Category, Per
from ...engine.periods import period_bounds, zone
from ...models.ledger import LedgerKind

TOTAL = "total"
CATEGORIES = (TOTAL, *(c.value for c in Category))
INDUSTRY_ROOT = "ind"
CLOSED_SET = "lb:closed"  # periods archived (the database's board_periods, mirrored)
PARTNER_PREFIX = "partner:"

# what moves a board: points earned, bonuses, corrections; spending and expiry never lower a rank
BOARD_KINDS = frozenset({LedgerKind.AWARD, LedgerKind.BONUS, LedgerKind.REVERSE, LedgerKind.ADJUST})

# the tie-break fraction: seconds since EPOCH over a span of 2**30 s (34 years). Points up to
# 2**22 in magnitude keep score = points + fraction exact in a double (53 bits).
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SPAN = 2**30
MAX_POINTS = 2**22


class PeriodKind(StrEnum):
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ALL = "all"


_PER = {PeriodKind.WEEK: Per.WEEK, PeriodKind.MONTH: Per.MONTH, PeriodKind.YEAR: Per.YEAR}
_PERIOD_RE = re.compile(r"^(?:(\d{4})-W(\d{2})|(\d{4})-(\d{2})|(\d{4})|all)$")


def period_id(kind: PeriodKind, local: dt.date) -> str:
    if kind is PeriodKind.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if kind is PeriodKind.MONTH:
        return f"{local:%Y-%m}"
    if kind is PeriodKind.YEAR:
        return f"{local:%Y}"
    return "all"


def parse_period(text: str) -> tuple[PeriodKind, dt.date | None]:
    """``2026-W48`` → (week, its Monday); ``2026-11`` → (month, the 1st); ``2026``; ``all``."""
    match = _PERIOD_RE.match(text or "")
    if not match:
        raise ValueError(f"not a period: {text!r} (2026-W48, 2026-11, 2026 or all)")
    wy, wn, my, mm, yy = match.groups()
    try:
        if wy:
            return PeriodKind.WEEK, dt.date.fromisocalendar(int(wy), int(wn), 1)
        if my:
            return PeriodKind.MONTH, dt.date(int(my), int(mm), 1)
        if yy:
            return PeriodKind.YEAR, dt.date(int(yy), 1, 1)
    except ValueError:
        raise ValueError(f"not a period: {text!r}") from None
    return PeriodKind.ALL, None


def period_span(kind: PeriodKind, local: dt.date, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """The aware [start, end) of the period of ``kind`` containing ``local``."""
    return period_bounds(_PER[kind], local, zone(tz_name))


def previous_day(kind: PeriodKind, local: dt.date) -> dt.date:
    """A day of the period before the one containing ``local``."""
    if kind is PeriodKind.WEEK:
        return local - dt.timedelta(days=7)
    if kind is PeriodKind.MONTH:
        return local.replace(day=1) - dt.timedelta(days=1)
    return local.replace(month=1, day=1) - dt.timedelta(days=1)


@dataclass(frozen=True)
class OpenPeriods:
    """The periods boards are live for at one moment: the current one of each kind, the
    previous one until it is archived, and all time."""

    ids: frozenset[str]
    current: dict[PeriodKind, str]
    previous: dict[PeriodKind, str]

    @classmethod
    def at(cls, now: dt.datetime, tz_name: str, closed=frozenset()) -> OpenPeriods:
        """The open periods at ``now``; a previous period in ``closed`` (archived) is not."""
        local = now.astimezone(zone(tz_name)).date()
        current = {k: period_id(k, local) for k in PeriodKind}
        previous = {
            k: period_id(k, previous_day(k, local)) for k in PeriodKind if k is not PeriodKind.ALL
        }
        ids = frozenset(current.values()) | (frozenset(previous.values()) - frozenset(closed))
        return cls(ids, current, previous)

    def resolve(self, text: str) -> str:
        """``week`` / ``month`` / ``year`` / ``all`` → the current period's id; an id as is."""
        try:
            return self.current[PeriodKind(text)]
        except ValueError:
            parse_period(text)
            return text


def board_key(scope: str, period: str, category: str) -> str:
    return f"lb:{{{scope}|{period}|{category}}}"


def children_key(parent: str, period: str, category: str) -> str:
    return f"lbo:{{{parent}|{period}|{category}}}"


def split_key(key: str) -> tuple[str, str, str, str]:
    """``lb:{sx.ty|2026-11|total}`` → ("lb", "sx.ty", "2026-11", "total")."""
    prefix, _, rest = key.partition(":{")
    scope, period, category = rest.rstrip("}").rsplit("|", 2)
    return prefix, scope, period, category


def ancestors(org_code: str) -> list[str]:
    """``sx.ty.xiaodian`` → [sx, sx.ty, sx.ty.xiaodian]."""
    parts = org_code.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def scopes_of(org_code: str, industry: str | None, partner_code: str | None) -> list[str]:
    """Every member board scope an entry counts on."""
    scopes = ancestors(org_code)
    if industry:
        scopes += [INDUSTRY_ROOT, f"{INDUSTRY_ROOT}.{industry}"]
    if partner_code:
        scopes.append(PARTNER_PREFIX + partner_code)
    return list(dict.fromkeys(scopes))


def sibling_pairs(org_code: str, industry: str | None) -> list[tuple[str, str]]:
    """(parent, child) for every step of the entry's chains: the organisations ranked
    against their siblings."""
    chain = ancestors(org_code)
    pairs = list(itertools.pairwise(chain))
    if industry:
        pairs.append((INDUSTRY_ROOT, f"{INDUSTRY_ROOT}.{industry}"))
    return pairs


def tie_fraction(moment: dt.datetime) -> float:
    """In [0, 1): later moments give smaller fractions, so earlier totals list first."""
    seconds = int((moment - EPOCH).total_seconds())
    seconds = min(max(seconds, 0), SPAN - 1)
    return (SPAN - 1 - seconds) / SPAN


def points_of(score: float) -> int:
    return math.floor(score)


# the name shown for a member who hides from public boards or whose personal data was erased
# (services.erasure stores it as the erased member's name)
ANONYMOUS = "匿名"


def mask_name(name: str | None) -> str:
    """张三丰 → 张*丰, 张三 → 张*, Li Hua → L*a; never the whole name. ``ANONYMOUS`` is
    not a name and stays as it is."""
    name = (name or "").strip()
    if name == ANONYMOUS:
        return name
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * min(len(name) - 2, 3) + name[-1]
