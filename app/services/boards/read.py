"""Reading boards: a page of a board, organisations against their siblings, a member's ranks.

Open periods are read from Redis (one script call per request), closed ones from their
archive in the database. Ranks are shared by equal points (1, 2, 2, 4); among equals the
member who reached the total first is listed first. Names are masked; a member who hides from
public boards keeps their place but is listed without a name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import redis
from flask import current_app
from sqlalchemy import bindparam, func, or_, select

from ...extensions import db
from ...models import BoardArchive, BoardPeriod, Member
from ...models.base import utcnow
from .keys import ANONYMOUS, OpenPeriods, board_key, children_key, mask_name, points_of

HIDDEN_NAME = ANONYMOUS

# KEYS[1]: the board. ARGV: offset, limit. → {total, rank of the first line, flat lines}
PAGE_SCRIPT = """
local total = redis.call('ZCARD', KEYS[1])
local lines = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[1] + ARGV[2] - 1, 'WITHSCORES')
local first = 0
if #lines > 0 then
  local p = math.floor(tonumber(lines[2]))
  first = redis.call('ZCOUNT', KEYS[1], string.format('%.17g', p + 1), '+inf') + 1
end
return {total, first, lines}
"""

# KEYS: boards. ARGV[1]: the member. → per board: {} or {score, above, total, position,
# the lines from the one above to the one below (flat), their ranks}
RANKS_SCRIPT = """
local out = {}
for i, k in ipairs(KEYS) do
  local s = redis.call('ZSCORE', k, ARGV[1])
  if s then
    local p = math.floor(tonumber(s))
    local above = redis.call('ZCOUNT', k, string.format('%.17g', p + 1), '+inf')
    local pos = redis.call('ZREVRANK', k, ARGV[1])
    local lo = pos - 1
    if lo < 0 then lo = 0 end
    local near = redis.call('ZREVRANGE', k, lo, pos + 1, 'WITHSCORES')
    local ranks = {}
    for j = 2, #near, 2 do
      local q = math.floor(tonumber(near[j]))
      ranks[j / 2] = redis.call('ZCOUNT', k, string.format('%.17g', q + 1), '+inf') + 1
    end
    out[i] = {s, above, redis.call('ZCARD', k), pos, near, ranks}
  else
    out[i] = {}
  end
end
return out
"""


@dataclass(frozen=True)
class Line:
    rank: int
    points: int
    member_id: int | None = None
    org_code: str | None = None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def is_closed(period: str) -> bool:
    return bool(archived_among([period]))


def _current(periods, now=None) -> set[str]:
    """Which of ``periods`` are current (or all time): never closed, no query needed."""
    open_ = OpenPeriods.at(now or utcnow(), current_app.config["APP_TIMEZONE"])
    return set(periods) & set(open_.current.values())


def page(client: redis.Redis, scope: str, period: str, category: str, limit: int, offset: int,
         archived: bool | None = None):  # fmt: skip
    """(total, [Line]) of a member board (``archived``: whether the period is closed, if the
    caller knows)."""
    if archived if archived is not None else is_closed(period):
        return _archived_page("lb", scope, period, category, limit, offset)
    total, first, flat = _script(client, PAGE_SCRIPT)(
        keys=[board_key(scope, period, category)], args=[offset, limit]
    )
    lines, rank, last = [], int(first), None
    for i in range(0, len(flat), 2):
        points = points_of(float(flat[i + 1]))
        if last is not None and points != last:
            rank = offset + i // 2 + 1
        last = points
        lines.append(Line(rank, points, member_id=int(_text(flat[i]))))
    return int(total), lines


def _archived_page(board, scope, period, category, limit, offset):
    where = (
        (BoardArchive.board == board)
        & (BoardArchive.scope == scope)
        & (BoardArchive.period == period)
        & (BoardArchive.category == category)
    )
    total = db.session.scalar(select(func.count()).select_from(BoardArchive).where(where)) or 0
    rows = db.session.execute(
        select(
            BoardArchive.rank, BoardArchive.points, BoardArchive.member_id, BoardArchive.org_code
        )
        .where(where, BoardArchive.position > offset)
        .order_by(BoardArchive.position)
        .limit(limit)
    )
    return total, [Line(r.rank, r.points, r.member_id, r.org_code) for r in rows]


def children(client: redis.Redis, parent: str, period: str, category: str) -> list[dict]:
    """The organisations just below ``parent``: subtree points, active members (with points
    in the period) and points per active member, best total first."""
    if is_closed(period):
        _, lines = _archived_page("lbo", parent, period, category, 10_000, 0)
        codes = [(line.org_code, line.points) for line in lines]
        actives = {
            code: n
            for code, n in db.session.execute(
                select(BoardArchive.scope, func.count())
                .where(
                    BoardArchive.board == "lb",
                    BoardArchive.period == period,
                    BoardArchive.category == category,
                    BoardArchive.scope.in_([c for c, _ in codes]),
                )
                .group_by(BoardArchive.scope)
            )
        }
    else:
        flat = client.zrevrange(children_key(parent, period, category), 0, -1, withscores=True)
        codes = [(_text(code), int(score)) for code, score in flat]
        pipe = client.pipeline(transaction=False)
        for code, _ in codes:
            pipe.zcard(board_key(code, period, category))
        actives = dict(zip([c for c, _ in codes], pipe.execute(), strict=True))
    out = []
    for code, points in codes:
        active = int(actives.get(code, 0))
        per_member = round(points / active, 2) if active else 0.0
        out.append({"org": code, "points": points, "active_members": active,
                    "points_per_member": per_member})  # fmt: skip
    return out


def member_ranks(client: redis.Redis, member_id: int, boards: list[tuple[str, str, str]]):
    """For each (scope, period, category) the member is on: rank, points, total, and the
    lines just above and below it in list order (Line or None). Closed periods come from
    their archive."""
    closed = archived_among({b[1] for b in boards})
    out = _archived_ranks(member_id, [b for b in boards if b[1] in closed])
    open_boards = [b for b in boards if b[1] not in closed]
    keys = [board_key(*b) for b in open_boards]
    replies = _script(client, RANKS_SCRIPT)(keys=keys, args=[str(member_id)]) if keys else []
    for board, reply in zip(open_boards, replies, strict=True):
        if not reply:
            continue
        score, above, total, position, flat, ranks = reply
        first = max(int(position) - 1, 0)  # the position of the first line returned
        near = {"above": None, "below": None}
        for i in range(0, len(flat), 2):
            at = first + i // 2
            if at != position:
                line = Line(int(ranks[i // 2]), points_of(float(flat[i + 1])), int(_text(flat[i])))
                near["above" if at < position else "below"] = line
        out.append(_rank(board, int(above) + 1, points_of(float(score)), int(total), **near))
    return out


def _rank(board, rank: int, points: int, total: int, above=None, below=None) -> dict:
    scope, period, category = board
    return {"scope": scope, "period": period, "category": category, "rank": rank,
            "points": points, "total": total, "above": above, "below": below}  # fmt: skip


def archived_among(periods) -> set[str]:
    """Which of ``periods`` are archived; the current ones are known without a query."""
    periods = sorted(set(periods) - _current(periods))
    if not periods:
        return set()
    return set(
        db.session.scalars(select(BoardPeriod.period).where(BoardPeriod.period.in_(periods)))
    )


def _archived_ranks(member_id: int, boards: list[tuple[str, str, str]]) -> list[dict]:
    if not boards:
        return []
    a = BoardArchive
    wanted = set(boards)
    mine = {
        (r.scope, r.period, r.category): r
        for r in db.session.scalars(
            select(a).where(
                a.board == "lb",
                a.member_id == member_id,
                a.period.in_({b[1] for b in boards}),
            )
        )
        if (r.scope, r.period, r.category) in wanted
    }
    if not mine:
        return []
    same_board = [
        (a.scope == s) & (a.period == p) & (a.category == c) & (a.board == "lb") for s, p, c in mine
    ]
    totals = {
        (s, p, c): n
        for s, p, c, n in db.session.execute(
            select(a.scope, a.period, a.category, func.max(a.position))
            .where(or_(*same_board))
            .group_by(a.scope, a.period, a.category)
        )
    }
    near = db.session.scalars(
        select(a).where(
            or_(
                *[
                    cond & a.position.in_([r.position - 1, r.position + 1])
                    for cond, r in zip(same_board, mine.values(), strict=True)
                ]
            )
        )
    )
    around: dict[tuple, dict] = {}
    for r in near:
        key = (r.scope, r.period, r.category)
        side = "above" if r.position < mine[key].position else "below"
        around.setdefault(key, {})[side] = Line(r.rank, r.points, r.member_id)
    return [
        _rank(key, r.rank, r.points, totals.get(key, 0), **around.get(key, {}))
        for key, r in mine.items()
    ]


@functools.lru_cache(maxsize=16)
def _script(client: redis.Redis, text: str):
    return client.register_script(text)


_NAMES = select(Member.id, Member.display_name, Member.hidden, Member.erased_at).where(
    Member.id.in_(bindparam("ids", expanding=True))
)


def names(member_ids) -> dict[int, str]:
    """Masked display names; members who hide from boards get none."""
    ids = sorted({m for m in member_ids if m is not None})
    if not ids:
        return {}
    rows = db.session.connection().execute(_NAMES, {"ids": ids})  # Core: no ORM per row
    return {
        r.id: HIDDEN_NAME if (r.hidden or r.erased_at) else mask_name(r.display_name) for r in rows
    }
