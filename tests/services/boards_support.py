"""Helpers for the leaderboard tests: fixed local moments, a BoardEntry factory, and reading
every board Redis holds."""

from __future__ import annotations

import datetime as dt

import factory

from app.engine.periods import zone
from app.services.boards import live_boards
from app.services.boards.keys import OpenPeriods
from app.services.boards.live import BoardEntry, increments

TZ = "Asia/Shanghai"
SHANGHAI = zone(TZ)


def at(local: str) -> dt.datetime:
    """A Shanghai wall-clock time (``2026-11-30 00:00:00``) as an aware UTC moment."""
    return dt.datetime.fromisoformat(local).replace(tzinfo=SHANGHAI).astimezone(dt.UTC)


class BoardEntryFactory(factory.Factory):
    """What a committed ledger entry tells the boards (not a row: nothing is stored)."""

    class Meta:
        model = BoardEntry

    member_id = factory.Sequence(lambda n: n + 1)
    seq = factory.Sequence(lambda n: n + 1)
    points = 10
    kind = "award"
    org_code = "sx.ty.xiaodian"
    category = "pioneer"
    partner_code = None
    industry = None
    occurred_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    created_at = factory.LazyAttribute(lambda o: o.occurred_at)


def apply_at(now: dt.datetime, entries: list[BoardEntry]) -> bool:
    """Record ``entries`` live as if it were ``now`` (``record`` always uses the clock)."""
    return live_boards().apply(increments(entries, OpenPeriods.at(now, TZ), TZ))


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def board(client, key: str) -> list[tuple[str, float]]:
    """A board in list order: (member or org code, score), best first."""
    return [(text(m), s) for m, s in client.zrevrange(key, 0, -1, withscores=True)]


def all_boards(client) -> dict[str, list[tuple[str, float]]]:
    """Every live board (member boards and boards of children), rebuild copies left out."""
    keys = {text(k) for pattern in ("lb:{*", "lbo:{*") for k in client.scan_iter(match=pattern)}
    return {k: board(client, k) for k in sorted(keys) if "~" not in k}
