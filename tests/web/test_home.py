"""The home page: balance, level and the way to the next, ranks with the change since the
last period, points per week, badges, recent activity, points about to expire."""

import datetime as dt
import re

from sqlalchemy import select

from app.extensions import db
from app.models import LedgerEntry, Member

from ..partner_api import hazard, shift
from .conftest import sign_in, text_of


def test_a_new_member_sees_zero_and_the_foot_of_the_ladder(web):
    page = text_of(web.get("/m/"))
    assert "可用积分 0" in page
    assert "蜜蜂" in page and "再得 300 分升为「能手」" in page
    assert "还没有记录" in page and "还没有徽章" in page


def test_points_level_progress_and_recent_activity_show(web, partner_api):
    for i in range(3):
        assert partner_api.post_event(shift(f"s{i}", days_ago=1 + i)).status_code == 201
    page = text_of(web.get("/m/"))
    assert "可用积分 45" in page and "累计获得 45 分" in page
    assert "再得 255 分升为「能手」" in page
    assert page.count("党员先锋岗值守") >= 3 and "+15" in page
    html = web.get("/m/").get_data(as_text=True)
    assert 'role="progressbar"' in html and 'aria-valuenow="45"' in html


def test_ranks_show_the_members_boards_and_its_place(app_ctx, web, partner_api):
    partner_api.put_member("r2", name="李大明", industry="delivery")
    just_now = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    partner_api.post_event(hazard("h1", member="r2", occurred_at=just_now))
    for i in (2, 3):  # r1 reports two: this week and this month it leads
        partner_api.post_event(hazard(f"h{i}", occurred_at=just_now))
    page = text_of(web.get("/m/"))
    # its own organisation (平城区, the members' home district) and its industry, week and month
    assert re.search(r"平城区 第 1 名 共 2 人 第 1 名 共 2 人", page), page
    assert "网络餐饮外卖行业党委" in page
    second = text_of(sign_in(app_ctx, partner_api, "r2").get("/m/"))
    assert "第 2 名" in second


def test_the_chart_has_twelve_weeks_with_this_weeks_points(web, partner_api):
    partner_api.post_event(shift("s1", days_ago=0.01))
    html = web.get("/m/").get_data(as_text=True)
    chart = html.index('<svg class="chart"')  # after the level bar's own svg
    svg = html[chart : html.index("</svg>", chart)]
    assert svg.count("<rect") == 12
    assert 'role="img"' in svg and "最近 12 周每周积分" in svg


def test_a_warning_shows_points_about_to_expire(web, partner_api):
    partner_api.post_event(shift("s1"))
    entry = db.session.scalar(select(LedgerEntry))
    member = db.session.scalar(select(Member))
    # credited last year: under end_of_following_year they lapse when next year begins,
    # which the warning shows within its 60 days (today is within them only in November and
    # December; move the entry so the check holds whatever the date)
    entry.created_at = entry.created_at.replace(year=entry.created_at.year - 1)
    db.session.commit()
    today = dt.datetime.now(dt.UTC)
    page = text_of(web.get("/m/"))
    if (dt.datetime(today.year + 1, 1, 1, tzinfo=dt.UTC) - today).days <= 59:
        assert "有 15 分将在" in page and "前过期" in page
    else:
        assert "前过期" not in page
    assert member.balance == 15


def test_the_home_page_is_small(web, partner_api):
    for i in range(10):
        partner_api.post_event(shift(f"s{i}", days_ago=1 + i))
    html = web.get("/m/").get_data()
    css = web.get("/m/static/web.css").get_data()
    assert len(html) + len(css) < 100_000
    assert b"http://" not in html.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")
    assert b"<script" not in html
