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
import functools
import json
import logging
import threading
import time
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
# set by every installed rebuild (``rebuild``): when a live update finds it missing, Redis
# lost the boards (flushed, or restarted without persistence) and a repair is asked for
BUILT = "lb:built"
REPAIR_ASKED = "lb:repair-asked"  # one repair at a time, whoever notices (cleared by a rebuild)

# KEYS: every board the call touches. ARGV[1]: the entries' names (JSON, for the journal).
# ARGV[2]: how many places follow; a place is a set of boards that one entry moves: its member
# boards (count, then indexes into KEYS) and its organisations' lines on boards of children
# (count, then (index, child) pairs). Then, to the end, one update per (place, member):
# place number, member, points, fraction. ``suffix`` redirects the writes to a rebuild's
# copies (the journal replay).
APPLY_BODY = """
local function apply(keys, args, suffix)
  local i, places = 3, {}
  for p = 1, tonumber(args[2]) do
    local boards, children = {}, {}
    for j = 1, tonumber(args[i]) do boards[j] = keys[tonumber(args[i + j])] .. suffix end
    i = i + tonumber(args[i]) + 1
    for j = 1, tonumber(args[i]) do
      children[j] = {keys[tonumber(args[i + 2 * j - 1])] .. suffix, args[i + 2 * j]}
    end
    i = i + 2 * tonumber(args[i]) + 1
    places[p] = {boards, children}
  end
  local sums, low = {}, {}
  while i <= #args do
    local place = places[tonumber(args[i])]
    local m, d, f = args[i + 1], tonumber(args[i + 2]), tonumber(args[i + 3])
    i = i + 4
    for _, k in ipairs(place[1]) do
      local s = redis.call('ZSCORE', k, m)
      -- g: this board's fraction (f stays the update's, for its next board), the newest
      -- moment of this call on the board even if an earlier update took the member off it
      local id = k .. '\0' .. m
      local p, g = 0, f
      if low[id] and low[id] < g then g = low[id] end
      if s then
        s = tonumber(s)
        p = math.floor(s)
        if s - p < g then g = s - p end
      end
      low[id] = g
      p = p + d
      if p == 0 then
        redis.call('ZREM', k, m)
      else
        redis.call('ZADD', k, p + g, m)  -- Redis writes a Lua number with %.17g: exact
      end
    end
    for _, c in ipairs(place[2]) do
      local id = c[1] .. '\0' .. c[2]
      local sum = sums[id]
      if sum then sum[3] = sum[3] + d else sums[id] = {c[1], c[2], d} end
    end
  end
  for _, sum in pairs(sums) do
    if sum[3] ~= 0 and tonumber(redis.call('ZINCRBY', sum[1], sum[3], sum[2])) == 0 then
      redis.call('ZREM', sum[1], sum[2])
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
if redis.call('EXISTS', '{BUILT}') == 0 then return -1 end
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
    """Changes to boards: per (place, member) the points and the newest moment's fraction,
    where a place is every board one entry moves (expanded into keys once per place)."""

    def __init__(self):
        self.updates: dict[tuple, list] = {}  # (place, member) → [points, fraction]
        self.entry_ids: list[str] = []  # "member_id:seq"

    def __bool__(self) -> bool:
        return bool(self.updates)

    def add(self, entry: BoardEntry, periods: tuple[str, ...]) -> None:
        if entry.kind not in BOARD_KINDS or entry.points == 0 or not periods:
            return
        if entry.seq is not None:
            self.entry_ids.append(f"{entry.member_id}:{entry.seq}")
        fraction = tie_fraction(entry.created_at)
        place = (entry.org_code, entry.industry, entry.partner_code, periods, entry.category)
        slot = self.updates.get((place, entry.member_id))
        if slot is None:
            self.updates[(place, entry.member_id)] = [entry.points, fraction]
        else:
            slot[0] += entry.points
            slot[1] = min(slot[1], fraction)

    def script_args(self) -> tuple[list[str], list]:
        """The Lua call's keys and arguments: one update per (board, member), however many
        entries moved it (a batch of a member's entries costs each board once), the boards
        that get the same change grouped into one place."""
        keys: dict[str, int] = {}
        places: dict[tuple, int] = {}
        head: list = []
        tail: list = []

        def place(boards: tuple, children: tuple) -> int:
            number = places.get((boards, children))
            if number is None:
                number = places[(boards, children)] = len(places) + 1
                head.append(len(boards))
                head.extend(keys.setdefault(k, len(keys) + 1) for k in boards)
                head.append(len(children))
                for key, child in children:
                    head.extend((keys.setdefault(key, len(keys) + 1), child))
            return number

        # a zero sum is sent too: its entries still changed the member's totals, so the
        # fraction moves (a rebuild, which sees entries, not calls, gives the same)
        by_member: dict[int, dict[str, tuple]] = {}  # member → board → (points, fraction)
        for (place_, member), (points, fraction) in self.updates.items():
            mine = by_member.get(member)
            if mine is None:
                mine = by_member[member] = {}
            for key in _place_keys(*place_)[0]:
                slot = mine.get(key)
                mine[key] = (
                    (points, fraction)
                    if slot is None
                    else (slot[0] + points, slot[1] if slot[1] < fraction else fraction)
                )
        for member, mine in by_member.items():
            groups: dict[tuple, list[str]] = {}
            for key, change in mine.items():
                groups.setdefault(change, []).append(key)
            for (points, fraction), boards in groups.items():
                tail += (place(tuple(sorted(boards)), ()), member, points, repr(fraction))
        by_sum: dict[int, list] = {}
        for pair, points in self.children.items():
            if points:
                by_sum.setdefault(points, []).append(pair)
        for points, pairs in by_sum.items():
            tail += (place((), tuple(sorted(pairs))), "", points, "0")
        return list(keys), [json.dumps(self.entry_ids), len(places), *head, *tail]

    # expanded views, for reading and tests: what each board gets
    @property
    def members(self) -> dict[tuple[str, str], list]:
        out: dict[tuple[str, str], list] = {}
        for (place, member), (points, fraction) in self.updates.items():
            for key in _place_keys(*place)[0]:
                slot = out.setdefault((key, str(member)), [0, fraction])
                slot[0] += points
                slot[1] = min(slot[1], fraction)
        return out

    @property
    def children(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for (place, _), (points, _) in self.updates.items():
            for pair in _place_keys(*place)[1]:
                out[pair] = out.get(pair, 0) + points
        return out


@functools.lru_cache(maxsize=65536)
def _place_keys(org_code, industry, partner_code, periods, category):
    """The member boards and the (children board, child) lines one entry moves."""
    boards, children = [], []
    for period in periods:
        for cat in (TOTAL, category):
            member_keys, child_keys = _keys(org_code, industry, partner_code, period, cat)
            boards += member_keys
            children += child_keys
    return tuple(dict.fromkeys(boards)), tuple(dict.fromkeys(children))


@functools.lru_cache(maxsize=65536)
def _keys(org_code, industry, partner_code, period, category):
    """The member boards and the (children board, child) pairs of one entry's place."""
    member_keys = tuple(
        board_key(scope, period, category) for scope in scopes_of(org_code, industry, partner_code)
    )
    child_keys = tuple(
        (children_key(parent, period, category), child)
        for parent, child in sibling_pairs(org_code, industry)
    )
    return member_keys, child_keys


def entry_periods(entry: BoardEntry, open_: OpenPeriods, tz_name: str) -> tuple[str, ...]:
    """The live periods an entry counts in: those of its activity that are still open."""
    local = entry.occurred_at.astimezone(zone(tz_name)).date()
    return tuple(p for p in _period_ids(local) if p in open_.ids)


@functools.lru_cache(maxsize=4096)
def _period_ids(local: dt.date) -> tuple[str, ...]:
    return tuple(period_id(kind, local) for kind in PeriodKind)


def increments(entries: Iterable[BoardEntry], open_: OpenPeriods, tz_name: str) -> Increments:
    out = Increments()
    for entry in entries:
        out.add(entry, entry_periods(entry, open_, tz_name))
    return out


class LiveBoards:
    """Applies increments to one Redis; remembers a failure until a repair is asked for.

    After a failure it leaves Redis alone for ``pause_seconds`` (every update in that time is
    left to the repair), so an unreachable Redis costs ingestion one timeout, not one per
    request.
    """

    def __init__(self, client: redis.Redis, on_repair=None, pause_seconds: float = 5.0):
        self.client = client
        self.script = client.register_script(LIVE_SCRIPT)
        self.on_repair = on_repair  # called (once) after Redis is back from a failure
        self.pause_seconds = pause_seconds
        self._failed = False
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def apply(self, inc: Increments) -> bool:
        """True when the boards took the changes; False (logged) when Redis failed."""
        if not inc:
            return True
        keys, args = inc.script_args()
        if not keys:
            return True
        if self._paused_until and time.monotonic() < self._paused_until:
            return False  # failed a moment ago: the repair will count these too
        try:
            applied = self.script(keys=keys, args=args)
        except redis.RedisError as exc:
            with self._lock:
                self._failed = True
                self._paused_until = time.monotonic() + self.pause_seconds
            log.warning(
                "leaderboards not updated for %d ledger entries (%s); a repair will rebuild "
                "them from the ledger",
                len(inc.entry_ids),
                type(exc).__name__,
            )
            return False
        lost = applied == -1  # Redis answers but lost the boards (flushed, restarted empty)
        if self._failed or lost:
            with self._lock:
                failed, self._failed, self._paused_until = self._failed, False, 0.0
            if (failed or lost) and self.on_repair is not None:
                try:
                    self.on_repair()
                except Exception:  # the nightly reconciliation is the backstop
                    log.exception("could not ask for a leaderboard repair")
        return True
