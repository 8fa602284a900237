"""Leaderboards in the console: any organisation of the subtree, live and archived periods,
masked names with member ids, and 404 for an organisation outside the subtree."""

from __future__ import annotations

import datetime as dt

import pytest

from app.extensions import db
from app.redis_client import get_redis
from app.services.boards.keys import OpenPeriods, PeriodKind, board_key

from ..factories import BoardArchiveFactory, BoardPeriodFactory, MemberFactory
from ..web.conftest import text_of
from .test_dashboard import org_id, staff


@pytest.fixture
def week_board(orgs) -> dict:
    """This week's live board of sx.dt: two riders, one hidden from boards."""
    a = MemberFactory(display_name="张三丰", primary_org_id=org_id("sx.dt.pingcheng"))
    b = MemberFactory(display_name="李四", primary_org_id=org_id("sx.dt"), hidden=True)
    db.session.commit()
    week = OpenPeriods.at(dt.datetime.now(dt.UTC), "Asia/Shanghai").current[PeriodKind.WEEK]
    get_redis().zadd(board_key("sx.dt", week, "total"), {str(a.id): 30.5, str(b.id): 20.5})
    get_redis().zadd(board_key("sx.dt", week, "volunteer"), {str(b.id): 4.5})
    return {"a": a.id, "b": b.id, "week": week}


@pytest.mark.parametrize("role", ["admin", "verifier", "station", "viewer"])
def test_every_role_reads_the_boards_of_its_subtree(app_ctx, week_board, role):
    user = staff(app_ctx, role)
    assert "排行榜" in text_of(user.client.get("/console/"))  # in everyone's menu
    response = user.client.get("/console/boards")
    assert response.status_code == 200
    page = text_of(response)
    assert f"1 张*丰 {week_board['a']} 30" in page
    assert f"2 匿名 {week_board['b']} 20" in page
    assert "共 2 人上榜" in page and "张三丰" not in page
    assert "平城区" in page  # a child to go down to


@pytest.mark.parametrize("scope", ["sx.ty", "sx", "sx.dtx", "sx.dt.nowhere", "ind"])
def test_an_organisation_outside_the_subtree_is_not_found(app_ctx, week_board, scope):
    user = staff(app_ctx)
    assert user.client.get(f"/console/boards?scope={scope}").status_code == 404


def test_a_child_category_and_period_are_chosen(app_ctx, week_board):
    user = staff(app_ctx)
    child = text_of(user.client.get("/console/boards?scope=sx.dt.pingcheng&period=week"))
    assert "平城区" in child and "这个榜单上还没有人" in child
    volunteer = text_of(user.client.get("/console/boards?period=week&category=volunteer"))
    assert "共 1 人上榜" in volunteer and f"{week_board['b']} 4" in volunteer
    explicit = text_of(user.client.get(f"/console/boards?period={week_board['week']}"))
    assert "共 2 人上榜" in explicit


@pytest.mark.parametrize("query", ["period=2026-W60", "period=lastweek", "category=bogus"])
def test_a_bad_period_or_category_is_explained(app_ctx, week_board, query):
    response = staff(app_ctx).client.get(f"/console/boards?{query}")
    assert response.status_code == 400 and "请" in text_of(response)


def test_an_archived_period_is_read_from_its_archive(app_ctx, orgs):
    a = MemberFactory(display_name="王五六", primary_org_id=org_id("sx.dt"))
    BoardPeriodFactory(period="2025-W47", kind="week")
    BoardArchiveFactory(scope="sx.dt", period="2025-W47", position=1, rank=1,
                        member_id=a.id, points=80)  # fmt: skip
    BoardArchiveFactory(scope="sx.dt", period="2025-W47", position=2, rank=2,
                        member_id=a.id + 1000, points=60)  # fmt: skip
    BoardArchiveFactory(scope="sx.ty", period="2025-W47", position=1, rank=1,
                        member_id=a.id, points=999)  # fmt: skip
    db.session.commit()
    page = text_of(staff(app_ctx).client.get("/console/boards?period=2025-W47"))
    assert "2025-W47 · 已归档" in page and "共 2 人上榜" in page
    assert f"1 王*六 {a.id} 80" in page and f"2 匿名 {a.id + 1000} 60" in page
    assert "999" not in page
    user = staff(app_ctx, "admin")
    assert user.client.get("/console/boards?scope=sx.ty&period=2025-W47").status_code == 404
