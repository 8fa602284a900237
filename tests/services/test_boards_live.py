"""Live boards: periods by local time, shared ranks and tie order, a member's points in two
organisations, and what a Redis failure costs (nothing: the ledger keeps the points)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
import redis
from sqlalchemy import func, select

import app.services.boards as boards
from app.extensions import db
from app.models import LedgerEntry, PartnerMember
from app.models.base import utcnow
from app.redis_client import get_redis
from app.services.boards import live as live_module
from app.services.boards import read
from app.services.boards.keys import OpenPeriods, board_key, children_key, split_key
from app.services.boards.live import increments
from app.services.boards.rebuild import rebuild_boards

from ..partner_api import HOME, STATION, hazard, shift
from .boards_support import TZ, BoardEntryFactory, at, board

# --- periods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "ids"),
    [
        ("2026-12-02 10:00:00",
         {"2026-W49", "2026-W48", "2026-12", "2026-11", "2026", "2025", "all"}),
        ("2026-11-29 23:59:59",
         {"2026-W48", "2026-W47", "2026-11", "2026-10", "2026", "2025", "all"}),
        ("2026-11-30 00:00:00",
         {"2026-W49", "2026-W48", "2026-11", "2026-10", "2026", "2025", "all"}),
        ("2026-01-01 00:00:00",
         {"2026-W01", "2025-W52", "2026-01", "2025-12", "2026", "2025", "all"}),
    ],
)  # fmt: skip
def test_the_open_periods_are_the_current_and_previous_ones_in_local_time(now, ids):
    open_ = OpenPeriods.at(at(now), TZ)
    assert open_.ids == ids


@pytest.mark.parametrize(
    ("now", "occurred", "periods"),
    [
        # Sunday 23:59:59 in Shanghai is still the ISO week before (15:59:59 UTC, Sunday too)
        ("2026-12-02 10:00:00", "2026-11-29 23:59:59", {"2026-W48", "2026-11", "2026", "all"}),
        ("2026-12-02 10:00:00", "2026-11-30 00:00:00", {"2026-W49", "2026-11", "2026", "all"}),
        # the month turns at local midnight of the 1st (16:00 UTC the day before)
        ("2026-12-02 10:00:00", "2026-11-30 23:59:59", {"2026-W49", "2026-11", "2026", "all"}),
        ("2026-12-02 10:00:00", "2026-12-01 00:00:00", {"2026-W49", "2026-12", "2026", "all"}),
        # a week that is no longer open counts only on its month, year and all time
        ("2026-12-02 10:00:00", "2026-11-22 23:59:59", {"2026-11", "2026", "all"}),
        # ISO weeks cross the year: 31 December 2025 is in 2026-W01
        ("2026-01-05 10:00:00", "2025-12-28 23:59:59", {"2025-12", "2025", "all"}),
        ("2026-01-05 10:00:00", "2025-12-31 23:59:59", {"2026-W01", "2025-12", "2025", "all"}),
        ("2026-01-05 10:00:00", "2026-01-01 00:00:00", {"2026-W01", "2026-01", "2026", "all"}),
    ],
)
def test_an_entry_counts_in_the_periods_of_its_local_time(now, occurred, periods):
    entry = BoardEntryFactory(org_code="sx", occurred_at=at(occurred))
    inc = increments([entry], OpenPeriods.at(at(now), TZ), TZ)
    assert {split_key(key)[2] for key, _ in inc.members} == periods
    assert {split_key(key)[3] for key, _ in inc.members} == {"total", "pioneer"}


def test_an_entry_counts_on_every_scope_it_belongs_to():
    entry = BoardEntryFactory(
        org_code="sx.ty.xiaodian", industry="delivery", partner_code="meituan", points=7
    )
    inc = increments([entry], OpenPeriods.at(entry.occurred_at, TZ), TZ)
    assert {split_key(key)[1] for key, _ in inc.members} == {
        "sx", "sx.ty", "sx.ty.xiaodian", "ind", "ind.delivery", "partner:meituan"}  # fmt: skip
    assert {(split_key(key)[1], child) for key, child in inc.children} == {
        ("sx", "sx.ty"), ("sx.ty", "sx.ty.xiaodian"), ("ind", "ind.delivery")}  # fmt: skip
    assert set(inc.children.values()) == {7}


@pytest.mark.parametrize("kind", ["redeem", "expire", "refund"])
def test_spending_and_expiry_never_move_a_board(app_ctx, kind):
    boards.record([BoardEntryFactory(kind=kind, points=-30 if kind != "refund" else 30)])
    assert not get_redis().keys("lb:{*")  # no board


# --- ties ----------------------------------------------------------------------------------


def record_in_order(*steps: tuple[int, int]) -> None:
    """Record (member, points) one transaction at a time, a second apart, on ``sx.ty``."""
    start = utcnow().replace(microsecond=0) - dt.timedelta(hours=1)
    for i, (member, points) in enumerate(steps):
        moment = start + dt.timedelta(seconds=i)
        kind = "reverse" if points < 0 else "award"
        entry = BoardEntryFactory(
            member_id=member, points=points, kind=kind, org_code="sx.ty", created_at=moment
        )
        assert boards.record([entry])


def ranking(scope: str = "sx.ty", limit: int = 10, offset: int = 0):
    total, lines = read.page(get_redis(), scope, "all", "total", limit, offset)
    return total, [(line.rank, line.member_id, line.points) for line in lines]


def test_equal_points_share_a_rank_and_list_who_reached_them_first(app_ctx):
    # 3 reaches 10 first, then 2 (5 + 5), while 4 stays at 5 and 1 goes to 20
    record_in_order((3, 10), (2, 5), (4, 5), (1, 10), (2, 5), (1, 10))
    assert ranking() == (4, [(1, 1, 20), (2, 3, 10), (2, 2, 10), (4, 4, 5)])
    # a page starting inside a tie still gives the shared rank
    assert ranking(limit=2, offset=2) == (4, [(2, 2, 10), (4, 4, 5)])
    assert ranking("sx") == ranking()


def test_dropping_back_to_a_total_lists_a_member_after_those_who_held_it(app_ctx):
    # 1 held 10 first, went to 15 and was corrected back to 10 after 2 had reached 10
    record_in_order((1, 10), (1, 5), (2, 10), (1, -5))
    assert ranking() == (2, [(1, 2, 10), (1, 1, 10)])


def test_a_members_ranks_show_the_lines_around_it(app_ctx):
    record_in_order((3, 10), (2, 10), (4, 5), (1, 20))
    (mine,) = read.member_ranks(get_redis(), 2, [("sx.ty", "all", "total")])
    assert (mine["rank"], mine["points"], mine["total"]) == (2, 10, 4)
    assert mine["above"] == read.Line(2, 10, 3)
    assert mine["below"] == read.Line(4, 5, 4)


# --- a member in two organisations ---------------------------------------------------------


def test_a_member_is_ranked_in_each_organisation_with_the_points_earned_there(partner_api, rider):
    at_station = partner_api.post_event(shift("s1", hours=3, org=STATION))
    at_home = partner_api.post_event(hazard("h1", severity="high"))
    assert (at_station.status_code, at_home.status_code) == (201, 201)
    station_points, home_points = at_station.json["points"], at_home.json["points"]
    assert station_points > 0 and home_points > 0
    assert partner_api.put_member("r2", industry="express").status_code == 201
    other = partner_api.post_event(shift("s2", member="r2", hours=2, org=STATION)).json["points"]
    r1, r2 = (
        db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == ref))
        for ref in ("r1", "r2")
    )
    client = get_redis()

    def points(scope: str, category: str = "total") -> dict[int, int]:
        return {int(m): int(s) for m, s in board(client, board_key(scope, "all", category))}

    assert points(STATION) == {r1: station_points, r2: other}
    assert points(HOME) == {r1: home_points}
    assert points("sx.ty") == {r1: station_points, r2: other}
    assert points("sx.dt") == {r1: home_points}
    # the common ancestor, the member's industry and the partner see the sum
    assert points("sx") == {r1: station_points + home_points, r2: other}
    assert points("ind.delivery") == {r1: station_points + home_points}
    assert points("ind") == {r1: station_points + home_points, r2: other}
    assert points("partner:meituan") == points("sx")
    assert points("sx", "pioneer") == {r1: station_points, r2: other}
    assert points("sx", "governance") == {r1: home_points}
    assert board(client, children_key("sx", "all", "total")) == sorted(
        [("sx.ty", station_points + other), ("sx.dt", home_points)], key=lambda c: -c[1]
    )
    assert {line["org"]: (line["points"], line["active_members"])
            for line in read.children(client, "sx", "all", "total")} == {
        "sx.ty": (station_points + other, 2), "sx.dt": (home_points, 1)}  # fmt: skip


# --- Redis failures ------------------------------------------------------------------------


def test_a_redis_failure_keeps_the_event_and_a_repair_rebuilds_the_board(
    partner_api, rider, monkeypatch
):
    repairs = []
    monkeypatch.setattr(boards, "_ask_for_repair", lambda: repairs.append(utcnow()))
    live = boards.live_boards()  # made now: it calls the patched repair
    clock = [1000.0]
    monkeypatch.setattr(live_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    def unreachable(*args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    working = live.script
    monkeypatch.setattr(live, "script", unreachable)
    lost = partner_api.post_event(hazard("h1", severity="high"))
    assert lost.status_code == 201, lost.json
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 1
    key = board_key("sx", "all", "total")
    client = get_redis()
    assert board(client, key) == [] and repairs == []

    monkeypatch.setattr(live, "script", working)
    clock[0] += 1  # Redis is left alone for a while: this one is left to the repair as well
    paused = partner_api.post_event(hazard("h2", severity="low", days_ago=2))
    assert paused.status_code == 201
    assert board(client, key) == [] and repairs == []

    clock[0] += live.pause_seconds
    kept = partner_api.post_event(hazard("h3", severity="low", days_ago=3))
    assert kept.status_code == 201
    assert len(repairs) == 1  # Redis answered again: one repair asked for
    assert [int(s) for _, s in board(client, key)] == [kept.json["points"]]
    later = partner_api.post_event(hazard("h4", severity="low", days_ago=4))
    assert later.status_code == 201
    assert len(repairs) == 1  # and only once
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 4

    db.session.commit()  # SQLite: the rebuild's snapshot waits for any open transaction
    report = rebuild_boards(client, TZ)
    assert report.drift_lines > 0
    earned = sum(r.json["points"] for r in (lost, paused, kept, later))
    assert [int(s) for _, s in board(client, key)] == [earned]
