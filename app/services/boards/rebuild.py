"""Rebuild every live board from the ledger, swap the copies in atomically, report drift.

1. Raise the rebuild flag: from now on every live update is also journalled (``live``).
2. In one read snapshot of the database, sum the ledger per member, organisation, category
   and partner for every open period, and write each board into a copy next to it
   (``lb:{...}~token``, same hash tag).
3. Work out which journalled updates the snapshot already holds (their entries, named by
   member and seq, are visible in it) and which it does not.
4. Compare each copy with its live board (the drift a reconciliation reports: lines whose
   points differ, as of that moment).
5. One Lua call replays the missing journalled updates onto the copies and renames every copy
   over its board; boards that no longer exist are dropped. A reader sees the old board or
   the new one, never half of one.

Used after a rules recalculation, after Redis lost its data, by the nightly reconciliation,
and as the repair after live updates failed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from sqlalchemy import and_, func, select, tuple_

from ...extensions import db
from ...models import BoardPeriod, LedgerEntry, Member, Partner
from ...models.base import utcnow
from .keys import (
    BOARD_KINDS,
    CLOSED_SET,
    OpenPeriods,
    PeriodKind,
    parse_period,
    period_span,
    split_key,
    tie_fraction,
)
from .live import APPLY_BODY, BUILT, JOURNAL, REBUILD_FLAG, REPAIR_ASKED, _place_keys

BOARD_PATTERNS = ("lb:{*", "lbo:{*")
CHUNK = 1000  # members per ZADD
# the rebuild flag is a lease: a running rebuild renews it every LEASE_SECONDS / 4, so one
# that died (a worker killed mid-job) lets go within LEASE_SECONDS and its retry can start
LEASE_SECONDS = 60

# ARGV: token, journal items already classified (n), entries the snapshot holds (JSON list),
# then the boards to install. Returns -1 when more updates arrived since (classify again).
SWAP_SCRIPT = (
    APPLY_BODY
    + f"""
local token, n = ARGV[1], tonumber(ARGV[2])
if redis.call('GET', '{REBUILD_FLAG}') ~= token then return -2 end
if redis.call('LLEN', '{JOURNAL}') ~= n then return -1 end
local seen = {{}}
for _, id in ipairs(cjson.decode(ARGV[3])) do seen[id] = true end
local suffix = '~' .. token
local installed = {{}}
for i = 4, #ARGV do installed[ARGV[i]] = true end
for _, raw in ipairs(redis.call('LRANGE', '{JOURNAL}', 0, -1)) do
  local item = cjson.decode(raw)
  local keys, args = item[1], item[2]
  local fresh = false
  for _, id in ipairs(cjson.decode(args[1])) do
    if not seen[id] then fresh = true end
  end
  if fresh then
    apply(keys, args, suffix)
    for _, k in ipairs(keys) do installed[k] = true end
  end
end
for k, _ in pairs(installed) do
  redis.call('UNLINK', k)
  if redis.call('EXISTS', k .. suffix) == 1 then redis.call('RENAME', k .. suffix, k) end
end
redis.call('DEL', '{REBUILD_FLAG}', '{JOURNAL}')
redis.call('SET', '{BUILT}', ARGV[1])
redis.call('DEL', '{REPAIR_ASKED}')
return n
"""
)


@dataclass
class RebuildReport:
    periods: list[str] = field(default_factory=list)
    boards: int = 0
    members: int = 0  # (board, member) lines written
    ledger_rows: int = 0  # aggregated ledger groups read
    journal_replayed: int = 0
    drift_boards: int = 0
    drift_lines: int = 0
    dropped: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def rebuild_boards(
    client: redis.Redis,
    tz_name: str,
    now: dt.datetime | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    check_drift: bool = True,
    lease_seconds: float | None = None,
) -> RebuildReport:
    """Recompute every live board from the ledger and install it (see the module doc).
    ``lease_seconds``: how long the flag outlives a rebuild that died (LEASE_SECONDS)."""
    lease_ms = int((lease_seconds or LEASE_SECONDS) * 1000)
    started = time.perf_counter()
    now = now or utcnow()
    closed = closed_periods()
    if closed:  # after Redis lost its data, live updates learn them again from here
        client.sadd(CLOSED_SET, *sorted(closed))
    open_ = OpenPeriods.at(now, tz_name, closed)
    token = secrets.token_hex(6)
    suffix = "~" + token
    report = RebuildReport(periods=sorted(open_.ids))
    progress = on_progress or (lambda stage, done: None)

    if not client.set(REBUILD_FLAG, token, nx=True, px=lease_ms):
        raise RuntimeError("another leaderboard rebuild is running")
    lease = _Lease(client, token, lease_ms)
    try:
        client.delete(JOURNAL)
        # boards of other periods (ended, archived or about to be) are the close job's
        existing = {k for k in board_keys(client) if split_key(k)[2] in open_.ids}
        with db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            else:  # SQLite: a snapshot that writers do not wait for (see extensions)
                conn = conn.execution_options(read_only=True)
            with conn.begin():
                periods, rows = _read(conn, open_, tz_name, report, progress)
                written: set[str] = set()
                for i, period in enumerate(periods):  # one period's boards in memory at a time
                    boards = _boards(rows, i, period)
                    written |= _write(client, boards, suffix, report, progress)
                del rows
                if check_drift:
                    _drift(client, written | existing, suffix, report)
                _swap(client, conn, token, written | existing, report)
        report.dropped = len(existing - written)
    except BaseException:
        lease.stop()
        _discard(client, suffix)
        client.register_script(_RELEASE)(keys=[REBUILD_FLAG, JOURNAL], args=[token])
        raise
    lease.stop()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1], KEYS[2]) end
return 0
"""


class _Lease:
    """Renews the rebuild flag while the rebuild runs, from a thread, until it finds the flag
    gone or another's (the swap then refuses to install: ``SWAP_SCRIPT`` checks the token)."""

    def __init__(self, client: redis.Redis, token: str, lease_ms: int):
        self._renew = client.register_script(_RENEW)
        self._token = token
        self._lease_ms = lease_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rebuild-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_ms / 4000):
            try:
                if not self._renew(keys=[REBUILD_FLAG], args=[self._token, self._lease_ms]):
                    return
            except redis.RedisError:  # Redis away for a moment: the next turn tries again
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def closed_periods() -> frozenset[str]:
    """Periods archived by the close job (their boards are no longer live). Read on a
    connection of its own, outside any caller's transaction, taking no write lock."""
    with db.engine.connect() as conn:
        conn = conn.execution_options(read_only=True)
        return frozenset(conn.execute(select(BoardPeriod.period)).scalars())


def board_keys(client: redis.Redis) -> list[str]:
    """Every board in Redis (member boards and boards of children), not a rebuild's copies."""
    out = []
    for pattern in BOARD_PATTERNS:
        for key in client.scan_iter(match=pattern, count=1000):
            key = key.decode() if isinstance(key, bytes) else key
            if "~" not in key:
                out.append(key)
    return out


def _discard(client: redis.Redis, suffix: str) -> None:
    for pattern in BOARD_PATTERNS:
        keys = list(client.scan_iter(match=pattern + suffix, count=1000))
        for i in range(0, len(keys), 1000):
            client.unlink(*keys[i : i + 1000])


def _read(conn, open_: OpenPeriods, tz_name: str, report, progress):
    """The ledger summed per member, organisation, category and partner, with per open
    period the points and the tie fraction of the newest moment that moved them (None: no
    entry in that period). One pass over the ledger; rows kept compact for ``_boards``."""
    le = LedgerEntry
    periods: list[tuple[str, object]] = []
    for pid in sorted(open_.ids):
        kind, first = parse_period(pid)
        if kind is PeriodKind.ALL:
            periods.append((pid, None))
            continue
        start, end = period_span(kind, first, tz_name)
        periods.append((pid, and_(le.occurred_at >= start, le.occurred_at < end)))
    columns = []
    nonzero = le.points != 0
    for _, cond in periods:
        if cond is None:
            columns += [func.sum(le.points), func.max(le.created_at).filter(nonzero)]
        else:
            columns += [
                func.sum(le.points).filter(cond),
                func.max(le.created_at).filter(and_(cond, nonzero)),
            ]
    query = (
        select(le.member_id, le.org_code, le.category, Partner.code, Member.industry, *columns)
        .join(Member, Member.id == le.member_id)
        .outerjoin(Partner, Partner.id == le.partner_id)
        .where(le.kind.in_([str(k) for k in BOARD_KINDS]))
        .group_by(le.member_id, le.org_code, le.category, Partner.code, Member.industry)
    )
    rows = []
    fractions: dict = {}
    result = conn.execution_options(stream_results=True, yield_per=10_000).execute(query)
    for row in result:
        sums = []
        for i in range(len(periods)):
            moment = row[6 + 2 * i]
            if moment is None:
                sums += (0, None)
                continue
            fraction = fractions.get(moment)
            if fraction is None:
                fraction = fractions[moment] = tie_fraction(_moment(moment))
            sums += (row[5 + 2 * i], fraction)
        rows.append((row[0], row[1], row[2], row[3], row[4], *sums))
        if len(rows) % 100_000 == 0:
            progress("read", len(rows))
        if len(fractions) > 1_000_000:
            fractions.clear()
    report.ledger_rows = len(rows)
    return [pid for pid, _ in periods], rows


def _boards(rows: list[tuple], i: int, period: str) -> dict[str, dict]:
    """{board key: {member id or child code: [points, fraction]}} of one period.

    A group summing to zero still counts its moment: the member's total on the boards it
    shares with other groups was changed then (as the live update saw)."""
    boards: dict[str, dict] = {}
    p_col, f_col = 5 + 2 * i, 6 + 2 * i
    places = (period,)
    for row in rows:
        fraction = row[f_col]
        if fraction is None:  # nothing moved points in this period
            continue
        points = row[p_col]
        member = row[0]
        member_keys, child_keys = _place_keys(row[1], row[4], row[3], places, row[2])
        for key in member_keys:
            board = boards.get(key)
            if board is None:
                board = boards[key] = {}
            slot = board.get(member)
            if slot is None:
                board[member] = [points, fraction]
            else:
                slot[0] += points
                if fraction < slot[1]:
                    slot[1] = fraction
        for key, child in child_keys:
            board = boards.get(key)
            if board is None:
                board = boards[key] = {}
            board[child] = board.get(child, 0) + points
    return boards


def _moment(value) -> dt.datetime:
    """A max(created_at): SQLite returns its text, PostgreSQL an aware datetime."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _write(client: redis.Redis, boards: dict, suffix: str, report, progress) -> set[str]:
    written = set()
    pipe = client.pipeline(transaction=False)
    pending = 0
    for key, lines in boards.items():
        member_board = key.startswith("lb:")
        if member_board:
            mapping = {str(m): p + f for m, (p, f) in lines.items() if p != 0}
        else:
            mapping = {child: p for child, p in lines.items() if p != 0}
        if not mapping:  # a board whose every line sums to zero has no copy
            continue
        items = list(mapping.items())
        for start in range(0, len(items), CHUNK):
            pipe.zadd(key + suffix, dict(items[start : start + CHUNK]))
        pending += len(items)
        written.add(key)
        report.boards += 1
        report.members += len(items)
        if pending >= 50_000:
            pipe.execute()
            pending = 0
            progress("write", report.members)
    pipe.execute()
    boards.clear()
    return written


def _drift(client: redis.Redis, boards: set[str], suffix: str, report) -> None:
    names = sorted(boards)
    for i in range(0, len(names), 100):
        pipe = client.pipeline(transaction=False)
        for key in names[i : i + 100]:
            pipe.zrange(key, 0, -1, withscores=True)
            pipe.zrange(key + suffix, 0, -1, withscores=True)
        replies = pipe.execute()
        for old, new in zip(replies[::2], replies[1::2], strict=True):
            old_points = {m: math.floor(s) for m, s in old}
            new_points = {m: math.floor(s) for m, s in new}
            differ = sum(1 for m, p in new_points.items() if old_points.get(m) != p)
            differ += sum(1 for m in old_points if m not in new_points)
            if differ:
                report.drift_boards += 1
                report.drift_lines += differ


def _swap(client: redis.Redis, conn, token: str, boards: set[str], report) -> None:
    """Replay the journal onto the copies and install them: retried while the journal grows."""
    script = client.register_script(SWAP_SCRIPT)
    seen: set[str] = set()
    classified = 0
    while True:
        raw = client.lrange(JOURNAL, classified, -1)
        names: set[str] = set()
        for item in raw:
            _keys, args = json.loads(item)
            names.update(json.loads(args[0]))
        if names:
            # entries this snapshot holds were already counted by the rebuild
            pairs = [tuple(map(int, name.split(":"))) for name in names]
            for i in range(0, len(pairs), 500):
                visible = conn.execute(
                    select(LedgerEntry.member_id, LedgerEntry.seq).where(
                        tuple_(LedgerEntry.member_id, LedgerEntry.seq).in_(pairs[i : i + 500])
                    )
                )
                seen.update(f"{m}:{s}" for m, s in visible)
            report.journal_replayed += len(names - seen)
        classified += len(raw)
        result = script(keys=[], args=[token, classified, json.dumps(sorted(seen)), *boards])
        if result == -2:
            raise RuntimeError("the rebuild's lease ran out (another rebuild took over)")
        if result != -1:
            return
