"""Live boards: what committed ledger entries add, in one Redis call per transaction.

``increments`` turns entries into per-(board, member) changes: a member's points on every
scope × open period × category the entry counts on, and each organisation's subtree total on
its parent's board of children. ``apply`` sends them all as one Lua script call, which keeps
the tie-break fraction right (see ``keys``) and, while a rebuild runs, also journals them for
the rebuild to replay (``rebuild``). If Redis cannot be reached the points stay safe in the
ledger: the failure is logged and the next successful call asks for a repair rebuild.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from ...engine.periods import zone
from .keys import (
    BOARD_KINDS,
    TOTAL,
    OpenPeriods,
    PeriodKind,
    board_key,
    children_key,
    period_id,
    scopes_of,
    sibling_pairs,
    tie_fraction,
)

log = logging.getLogger(__name__)

REBUILD_FLAG = "lb:rebuild"  # set while a rebuild runs: live calls journal what they do
JOURNAL = "lb:journal"

# KEYS: n member boards, then children boards. ARGV: n, the entries' names (JSON), then
# (member, delta, fraction) per member board, then (child, delta) per children board.
# ``suffix`` redirects the writes to a rebuild's copies (the journal replay).
APPLY_BODY = """
local function apply(keys, args, suffix)
  local n = tonumber(args[1])
  for i = 1, #keys do
    local k = keys[i] .. suffix
    if i <= n then
      local b = 2 + 3 * (i - 1)
      local m, d, f = args[b + 1], tonumber(args[b + 2]), tonumber(args[b + 3])
      local s = redis.call('ZSCORE', k, m)
      local p = 0
      if s then
        s = tonumber(s)
        p = math.floor(s)
        if s - p < f then f = s - p end
      end
      p = p + d
      if p == 0 then
        redis.call('ZREM', k, m)
      else
        redis.call('ZADD', k, string.format('%.17g', p + f), m)
      end
    else
      local b = 2 + 3 * n + 2 * (i - n - 1)
      local m = args[b + 1]
      if tonumber(redis.call('ZINCRBY', k, args[b + 2], m)) == 0 then
        redis.call('ZREM', k, m)
      end
    end
  end
end
"""

LIVE_SCRIPT = (
    APPLY_BODY
    + f"""
apply(KEYS, ARGV, '')
if redis.call('EXISTS', '{REBUILD_FLAG}') == 1 then
  redis.call('RPUSH', '{JOURNAL}', cjson.encode({{KEYS, ARGV}}))
end
return #KEYS
"""
)


@dataclass(frozen=True, slots=True)
class BoardEntry:
    """What boards need of one ledger entry."""

    member_id: int
    seq: int | None  # with member_id, names the entry (journal replay); None: not stored
    points: int
    kind: str
    org_code: str
    category: str
    partner_code: str | None
    industry: str | None
    occurred_at: dt.datetime
    created_at: dt.datetime


class Increments:
    """Changes to boards, summed per (board, member)."""

    def __init__(self):
        self.members: dict[tuple[str, str], list] = {}  # (key, member) → [points, fraction]
        self.children: dict[tuple[str, str], int] = {}  # (key, child org) → points
        self.entry_ids: list[str] = []  # "member_id:seq"

    def __bool__(self) -> bool:
        return bool(self.members or self.children)

    def add(self, entry: BoardEntry, periods: list[str]) -> None:
        if entry.kind not in BOARD_KINDS or entry.points == 0:
            return
        if entry.seq is not None:
            self.entry_ids.append(f"{entry.member_id}:{entry.seq}")
        member = str(entry.member_id)
        fraction = tie_fraction(entry.created_at)
        categories = (TOTAL, entry.category)
        scopes = scopes_of(entry.org_code, entry.industry, entry.partner_code)
        pairs = sibling_pairs(entry.org_code, entry.industry)
        members, children = self.members, self.children
        for period in periods:
            for category in categories:
                for scope in scopes:
                    slot = members.get((board_key(scope, period, category), member))
                    if slot is None:
                        members[(board_key(scope, period, category), member)] = [
                            entry.points,
                            fraction,
                        ]
                    else:
                        slot[0] += entry.points
                        slot[1] = min(slot[1], fraction)
                for parent, child in pairs:
                    key = (children_key(parent, period, category), child)
                    children[key] = children.get(key, 0) + entry.points

    def script_args(self) -> tuple[list[str], list]:
        keys: list[str] = []
        args: list = [0, json.dumps(self.entry_ids)]
        for (key, member), (points, fraction) in self.members.items():
            if points == 0:
                continue
            keys.append(key)
            args += (member, points, repr(fraction))
        args[0] = len(keys)
        for (key, child), points in self.children.items():
            if points == 0:
                continue
            keys.append(key)
            args += (child, points)
        return keys, args


def entry_periods(entry: BoardEntry, open_: OpenPeriods, tz_name: str) -> list[str]:
    """The live periods an entry counts in: those of its activity that are still open."""
    local = entry.occurred_at.astimezone(zone(tz_name)).date()
    ids = [period_id(kind, local) for kind in PeriodKind]
    return [p for p in ids if p in open_.ids]


def increments(entries: Iterable[BoardEntry], open_: OpenPeriods, tz_name: str) -> Increments:
    out = Increments()
    for entry in entries:
        out.add(entry, entry_periods(entry, open_, tz_name))
    return out


class LiveBoards:
    """Applies increments to one Redis; remembers a failure until a repair is asked for."""

    def __init__(self, client: redis.Redis, on_repair=None):
        self.client = client
        self.script = client.register_script(LIVE_SCRIPT)
        self.on_repair = on_repair  # called (once) after Redis is back from a failure
        self._failed = False
        self._lock = threading.Lock()

    def apply(self, inc: Increments) -> bool:
        """True when the boards took the changes; False (logged) when Redis failed."""
        if not inc:
            return True
        keys, args = inc.script_args()
        if not keys:
            return True
        try:
            self.script(keys=keys, args=args)
        except redis.RedisError as exc:
            with self._lock:
                self._failed = True
            log.warning(
                "leaderboards not updated for %d ledger entries (%s); a repair will rebuild "
                "them from the ledger",
                len(inc.entry_ids),
                type(exc).__name__,
            )
            return False
        if self._failed:
            with self._lock:
                failed, self._failed = self._failed, False
            if failed and self.on_repair is not None:
                try:
                    self.on_repair()
                except Exception:  # the nightly reconciliation is the backstop
                    log.exception("could not ask for a leaderboard repair")
        return True
