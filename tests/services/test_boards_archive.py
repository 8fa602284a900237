"""Closing periods: an ended week's boards go to the database in rank order, once, and are
read from there."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import BoardArchive, BoardPeriod
from app.redis_client import get_redis
from app.services.boards import read
from app.services.boards.archive import KEEP_SECONDS, close_periods
from app.services.boards.keys import OpenPeriods, PeriodKind, board_key, children_key, split_key

from .boards_support import TZ, BoardEntryFactory, all_boards, apply_at, at

WEEK = "2026-W50"
NOW = at("2026-12-09 10:00:00")  # Wednesday of 2026-W50
NEXT_WEEK = at("2026-12-14 00:00:00")  # the Monday after, at local midnight


@pytest.fixture
def last_week(app_ctx):
    """Four members on ``sx.ty.xiaodian`` in 2026-W50: 20 points, then 10, 10 and 5; of the
    two with 10, member 3 got there first. Member 9 earned 8 in Datong."""
    start = at("2026-12-08 12:00:00")
    steps = [(3, 10), (2, 4), (4, 5), (1, 20), (2, 6), (9, 8)]
    for i, (member, points) in enumerate(steps):
        moment = start + dt.timedelta(minutes=i)
        org = "sx.dt.pingcheng" if member == 9 else "sx.ty.xiaodian"
        entry = BoardEntryFactory(
            member_id=member, points=points, org_code=org, occurred_at=moment, created_at=moment
        )
        assert apply_at(NOW, [entry])


def archived(scope: str, board: str = "lb") -> list[tuple]:
    rows = db.session.execute(
        select(
            BoardArchive.position, BoardArchive.rank, BoardArchive.member_id,
            BoardArchive.org_code, BoardArchive.points,
        )
        .where(BoardArchive.board == board, BoardArchive.scope == scope,
               BoardArchive.period == WEEK, BoardArchive.category == "total")
        .order_by(BoardArchive.position)
    )  # fmt: skip
    return [tuple(r) for r in rows]


def test_closing_archives_last_weeks_boards_in_rank_order(last_week):
    client = get_redis()
    week_keys = [k for k in all_boards(client) if split_key(k)[2] == WEEK]
    report = close_periods(client, TZ, now=NEXT_WEEK)

    assert report.closed == [WEEK]  # the month, the year and all time go on
    assert archived("sx.ty.xiaodian") == [
        (1, 1, 1, None, 20), (2, 2, 3, None, 10), (3, 2, 2, None, 10), (4, 4, 4, None, 5)]  # fmt: skip
    assert [r[1:3] for r in archived("sx")] == [(1, 1), (2, 3), (2, 2), (4, 9), (5, 4)]
    assert archived("sx", board="lbo") == [(1, 1, None, "sx.ty", 45), (2, 2, None, "sx.dt", 8)]
    period = db.session.get(BoardPeriod, WEEK)
    assert (period.kind, period.boards) == ("week", len(week_keys))
    assert period.rows == db.session.scalar(select(func.count(BoardArchive.id)))
    # the closed week's keys expire; the open periods' keys stay
    ttls = {key: client.ttl(key) for key in all_boards(client)}
    assert all(0 < ttls[k] <= KEEP_SECONDS for k in week_keys)
    assert all(ttl == -1 for k, ttl in ttls.items() if k not in week_keys)
    assert report.expired_keys == len(week_keys)


def test_closing_again_closes_nothing_new(last_week):
    client = get_redis()
    close_periods(client, TZ, now=NEXT_WEEK)
    rows = db.session.scalar(select(func.count(BoardArchive.id)))

    again = close_periods(client, TZ, now=NEXT_WEEK + dt.timedelta(hours=1))
    assert (again.closed, again.boards, again.rows, again.expired_keys) == ([], 0, 0, 0)
    assert db.session.scalar(select(func.count(BoardArchive.id))) == rows
    assert db.session.scalar(select(func.count()).select_from(BoardPeriod)) == 1


def test_nothing_closes_before_the_week_ends(last_week):
    report = close_periods(get_redis(), TZ, now=NEXT_WEEK - dt.timedelta(seconds=1))
    assert report.closed == []
    assert db.session.scalar(select(func.count()).select_from(BoardPeriod)) == 0


def test_a_closed_week_is_read_from_its_archive(last_week):
    client = get_redis()
    close_periods(client, TZ, now=NEXT_WEEK)
    # what Redis still holds no longer matters: the archive is the week's final ranking
    client.delete(*[k for k in all_boards(client) if split_key(k)[2] == WEEK])
    client.zadd(board_key("sx.ty.xiaodian", WEEK, "total"), {"7": 99})

    total, lines = read.page(client, "sx.ty.xiaodian", WEEK, "total", 10, 0)
    assert total == 4
    assert [(line.rank, line.member_id, line.points) for line in lines] == [
        (1, 1, 20), (2, 3, 10), (2, 2, 10), (4, 4, 5)]  # fmt: skip
    total, lines = read.page(client, "sx.ty.xiaodian", WEEK, "total", 2, 2)
    assert (total, [(line.rank, line.member_id) for line in lines]) == (4, [(2, 2), (4, 4)])
    assert [(c["org"], c["points"], c["active_members"])
            for c in read.children(client, "sx", WEEK, "total")] == [
        ("sx.ty", 45, 4), ("sx.dt", 8, 1)]  # fmt: skip
    assert not client.exists(children_key("sx", WEEK, "total"))


def test_an_archived_period_is_no_longer_live_and_a_rebuild_leaves_other_periods_alone(
    app_ctx,
):
    from app.services.boards import clear_closed_cache, record
    from app.services.boards.keys import board_key
    from app.services.boards.live import BoardEntry
    from app.services.boards.rebuild import rebuild_boards

    client = get_redis()
    now = dt.datetime.now(dt.UTC)
    open_ = OpenPeriods.at(now, TZ)
    last_week = open_.previous[PeriodKind.WEEK]
    monday = dt.date.fromisocalendar(*map(int, last_week.split("-W")), 1)
    entry = BoardEntry(
        member_id=1, seq=None, points=5, kind="award", org_code="sx.ty", category="pioneer",
        partner_code=None, industry=None, created_at=now,
        occurred_at=dt.datetime.combine(monday, dt.time(12), tzinfo=dt.UTC),
    )  # fmt: skip
    assert record([entry])
    assert client.exists(board_key("sx", last_week, "total"))
    assert last_week in close_periods(client, TZ).closed
    client.flushdb()
    clear_closed_cache()
    rebuild_boards(client, TZ)  # after a Redis loss the archived periods are known again
    assert record([entry])  # counts on all time, no longer on the archived week
    assert client.exists(board_key("sx", "all", "total"))
    assert not client.exists(board_key("sx", last_week, "total"))
    # an ended period's board that was never archived is the close job's, not the rebuild's
    stray = board_key("sx", "2020-W01", "total")
    client.zadd(stray, {"1": 5.5})
    rebuild_boards(client, TZ)
    assert client.zrange(stray, 0, -1, withscores=True) == [(b"1", 5.5)]
