"""The console overview: its numbers for a small known data set, counted only in the user's
subtree (``sx.dtx`` is not below ``sx.dt``), for every role."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Organisation
from app.redis_client import get_redis
from app.services.boards.keys import OpenPeriods, PeriodKind, board_key

from ..factories import (
    ConsoleUserFactory,
    EventFactory,
    LedgerEntryFactory,
    MemberFactory,
    RedemptionFactory,
)
from ..web.conftest import text_of
from .test_console import sign_in


def org_id(code: str) -> int:
    return db.session.scalar(select(Organisation.id).where(Organisation.code == code))


def staff(app, role: str = "viewer", org: str = "sx.dt"):
    ConsoleUserFactory(username=f"{role}-user", org_code=org, role=role)
    db.session.commit()
    return sign_in(app, f"{role}-user")


@pytest.fixture
def datong(orgs) -> dict:
    """Three riders of Datong and one of Taiyuan, with points, events and redemptions."""
    now = dt.datetime.now(dt.UTC)
    a = MemberFactory(display_name="张三丰", primary_org_id=org_id("sx.dt.pingcheng"))
    b = MemberFactory(display_name="李四", primary_org_id=org_id("sx.dt.pingcheng"))
    c = MemberFactory(display_name="王五六", primary_org_id=org_id("sx.dt"))
    d = MemberFactory(display_name="赵太原", primary_org_id=org_id("sx.ty.xiaodian"))
    entries = [
        (a, "award", "pioneer", 30, "sx.dt.pingcheng", now),
        (a, "award", "pioneer", 20, "sx.dt.pingcheng", now - dt.timedelta(days=21)),
        (a, "award", "pioneer", 99, "sx.dt.pingcheng", now - dt.timedelta(days=91)),  # too old
        (a, "redeem", "other", -5, "sx.dt.pingcheng", now),  # spending is not activity
        (b, "award", "volunteer", 5, "sx.dt", now),
        (c, "adjust", "other", 7, "sx.dt", now),  # counts as points, not as activity
        (d, "award", "pioneer", 100, "sx.ty.xiaodian", now),  # another subtree
        (d, "award", "pioneer", 100, "sx.dtx", now),  # a look-alike code, not below sx.dt
    ]
    for seq, (member, kind, category, points, org, at) in enumerate(entries, 1):
        LedgerEntryFactory(member_id=member.id, seq=seq, kind=kind, category=category,
                           points=points, org_code=org, occurred_at=at)  # fmt: skip
    EventFactory(member_id=a.id, org_code="sx.dt.pingcheng", status="pending")
    EventFactory(member_id=a.id, org_code="sx.dt.pingcheng", status="pending")
    EventFactory(member_id=d.id, org_code="sx.ty", status="pending")
    RedemptionFactory(member_id=a.id, org_code="sx.dt.pingcheng")
    RedemptionFactory(member_id=d.id)  # at a Taiyuan station
    db.session.commit()
    month = OpenPeriods.at(now, "Asia/Shanghai").current[PeriodKind.MONTH]
    get_redis().zadd(board_key("sx.dt", month, "total"), {str(a.id): 30.5, str(b.id): 5.5})
    get_redis().zadd(board_key("sx.ty", month, "total"), {str(d.id): 100.5})
    return {"a": a.id, "b": b.id, "c": c.id, "d": d.id}


def number(page: str, label: str) -> str:
    return page.split(label, 1)[1].split()[0]


@pytest.mark.parametrize("role", ["admin", "verifier", "station", "viewer"])
def test_every_role_sees_the_overview_of_its_subtree(app_ctx, datong, role):
    page = text_of(staff(app_ctx, role).client.get("/console/"))
    assert number(page, "待确认的活动") == "2"
    assert number(page, "等待领取的兑换") == "1"
    assert number(page, "骑手人数") == "3"
    assert number(page, "本周活跃骑手") == "2"


def test_the_overview_sums_points_by_category_over_twelve_weeks(app_ctx, datong):
    response = staff(app_ctx).client.get("/console/")
    page = text_of(response)
    assert "先锋岗位 50 30" in page
    assert "志愿服务 5 5" in page
    assert "其他 7 7" in page
    assert "合计 62" in page
    assert "基层治理" not in page  # no points in that category: no line
    html = response.get_data(as_text=True)
    assert html.count("<rect") == 12 and ">42<" in html  # this week's bar: 30 + 5 + 7


def test_the_overview_lists_the_top_of_this_months_board_with_masked_names(app_ctx, datong):
    page = text_of(staff(app_ctx).client.get("/console/"))
    top = page.split("本月前 10 名", 1)[1]
    assert "1 张*丰 30" in top and "2 李* 5" in top
    assert "张三丰" not in page and "赵" not in top


def test_a_user_lower_in_the_tree_sees_only_its_part(app_ctx, datong):
    page = text_of(staff(app_ctx, org="sx.dt.pingcheng").client.get("/console/"))
    assert number(page, "骑手人数") == "2"
    assert number(page, "本周活跃骑手") == "1"
    assert "先锋岗位 50 30" in page and "志愿服务" not in page
    assert "本月还没有人上榜" in page  # no board for sx.dt.pingcheng in this data set


def test_an_empty_subtree_shows_zeros(app_ctx, orgs):
    page = text_of(staff(app_ctx, org="sx.ty.xiaodian.pingyang").client.get("/console/"))
    assert number(page, "骑手人数") == "0"
    assert "近 12 周还没有积分" in page
