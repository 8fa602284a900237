"""Close periods: copy the final ranking of every board of an ended period to the database.

Run every few minutes by the scheduler (``close_periods_job``); it is idempotent. For each
week, month or year that has ended, still has boards in Redis and has no ``BoardPeriod`` row,
it writes every board of that period to ``board_archives`` in rank order and the period's row,
in one transaction, and only then lets the Redis keys expire. A job that dies half way leaves
nothing behind and runs again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import redis
from sqlalchemy import insert

from ...extensions import db
from ...models import BoardArchive, BoardPeriod
from ...models.base import utcnow
from . import clear_closed_cache
from .keys import CLOSED_SET, OpenPeriods, PeriodKind, parse_period, points_of, split_key
from .rebuild import board_keys, closed_periods

KEEP_SECONDS = 3600  # archived boards are read from the database; their keys go soon
PAGE = 10_000
INSERT_ROWS = 5_000


@dataclass
class CloseReport:
    closed: list[str] = field(default_factory=list)
    boards: int = 0
    rows: int = 0
    expired_keys: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def board_periods(client: redis.Redis) -> dict[str, list[str]]:
    """Every period that has boards in Redis, with its keys."""
    out: dict[str, list[str]] = {}
    for key in board_keys(client):
        out.setdefault(split_key(key)[2], []).append(key)
    return out


def ended(period: str, now: dt.datetime, tz_name: str) -> bool:
    """A week, month or year before the current one."""
    kind, first = parse_period(period)
    if kind is PeriodKind.ALL:
        return False
    _, current_first = parse_period(OpenPeriods.at(now, tz_name).current[kind])
    return first < current_first


def close_periods(client: redis.Redis, tz_name: str, now: dt.datetime | None = None) -> CloseReport:
    now = now or utcnow()
    report = CloseReport()
    closed = closed_periods()
    for period, keys in sorted(board_periods(client).items()):
        if not ended(period, now, tz_name):
            continue
        if period not in closed:
            archive_period(client, period, keys, report)
            db.session.commit()  # each period on its own: a later failure keeps earlier work
            report.closed.append(period)
        # live updates stop touching it: in this process at once, in others within a minute
        client.sadd(CLOSED_SET, period)
        clear_closed_cache()
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        for key, ttl in zip(keys, pipe.execute(), strict=True):
            if ttl == -1:
                client.expire(key, KEEP_SECONDS)
                report.expired_keys += 1
    return report


def archive_period(client: redis.Redis, period: str, keys: list[str], report: CloseReport) -> None:
    kind, _ = parse_period(period)
    rows_in_period = 0
    for key in sorted(keys):
        prefix, scope, _, category = split_key(key)
        position, rank, last_points = 0, 0, None
        batch: list[dict] = []
        start = 0
        while True:
            lines = client.zrevrange(key, start, start + PAGE - 1, withscores=True)
            if not lines:
                break
            start += len(lines)
            for name, score in lines:
                name = name.decode() if isinstance(name, bytes) else name
                points = points_of(score)
                position += 1
                if points != last_points:
                    rank, last_points = position, points
                batch.append(
                    {
                        "board": prefix,
                        "scope": scope,
                        "period": period,
                        "category": category,
                        "position": position,
                        "rank": rank,
                        "member_id": int(name) if prefix == "lb" else None,
                        "org_code": name if prefix == "lbo" else None,
                        "points": points,
                    }
                )
                if len(batch) >= INSERT_ROWS:
                    db.session.execute(insert(BoardArchive), batch)
                    batch = []
        if batch:
            db.session.execute(insert(BoardArchive), batch)
        rows_in_period += position
        report.boards += 1
    report.rows += rows_in_period
    db.session.add(
        BoardPeriod(period=period, kind=kind.value, boards=len(keys), rows=rows_in_period)
    )
    db.session.flush()
