"""History: the member's own ledger, newest first, by category, twenty lines a page, each
with why it earned what it did; above it, recent activities waiting, refused or earning
nothing, each with a way to appeal."""

import datetime as dt
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Event, LedgerEntry, PartnerMember

from ..conftest import local
from ..factories import EventFactory, LedgerEntryFactory
from ..partner_api import hazard, shift
from .conftest import sign_in, text_of


def member_id(ref: str) -> int:
    return db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == ref))


def afternoon_shift(event_id: str, hours: float, days_ago: float = 1) -> dict:
    """A shift starting at 15:00, so it does not overlap the morning one of ``shift``."""
    start = local(days_ago, 15)
    end = start + dt.timedelta(hours=hours)
    body = shift(event_id, hours=hours, days_ago=days_ago)
    body["occurred_at"] = start.isoformat()
    body["data"].update(start=start.isoformat(), end=end.isoformat())
    return body


def volunteer(event_id: str, hours: float = 2, days_ago: float = 2) -> dict:
    start = local(days_ago, 14)
    end = start + dt.timedelta(hours=hours)
    return {
        "id": event_id,
        "type": "volunteer.hours",
        "member": "r1",
        "occurred_at": start.isoformat(),
        "data": {"hours": hours, "start": start.isoformat(), "end": end.isoformat()},
    }


def post(partner_api, *bodies) -> None:
    for body in bodies:
        response = partner_api.post_event(body)
        assert response.status_code == 201, response.json


def raw_lines(member: int, n: int, **fields) -> list[LedgerEntry]:
    """``n`` raw ledger rows, seq 1..n, oldest first (the pages only read them)."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        LedgerEntryFactory(member_id=member, seq=i, reason=f"测试记录 {i:02d}",
                           occurred_at=now - dt.timedelta(hours=n - i), **fields)
        for i in range(1, n + 1)
    ]  # fmt: skip
    db.session.commit()
    return rows


def test_history_needs_a_session(client, rider):
    response = client.get("/m/history")
    assert response.status_code == 401 and "请先登录" in text_of(response)


def test_lines_show_newest_first_with_their_explanation(web, partner_api):
    post(partner_api, shift("s1", hours=3, days_ago=2), hazard("h1", severity="high", days_ago=1))
    response = web.get("/m/history")
    assert response.status_code == 200
    page = text_of(response)
    assert "积分明细" in page
    assert page.index("隐患上报：10 分") < page.index("党员先锋岗值守：5 × min(3 小时, 8) = 15 分")
    assert "+15" in page and "+10" in page and "获得积分" in page
    assert "每日上限 40 分，剩余 25 分" in page  # the cap it counts against
    assert 'aria-current="page"' in response.get_data(as_text=True)  # the menu knows the page


def test_a_line_cut_by_a_cap_says_so(web, partner_api):
    post(partner_api, shift("s1", hours=6), afternoon_shift("s2", hours=4))
    page = text_of(web.get("/m/history"))
    assert "5 × min(4 小时, 8) = 20 分（每日上限 40 分，已达上限；实得 10 分）" in page
    assert "+10" in page and "+30" in page


def test_an_english_page_explains_in_english_and_keeps_other_lines_in_chinese(web, partner_api):
    post(partner_api, shift("s1", hours=3))
    member = member_id("r1")
    LedgerEntryFactory(member_id=member, seq=2, points=-5, kind="redeem", reason="兑换「热饮一杯」")
    db.session.commit()
    web.get("/m/lang/en")
    html = web.get("/m/history").get_data(as_text=True)
    assert "Pioneer-post duty shift: 5 × min(3 h, 8) = 15 points (daily cap 40: 25 left)" in html
    assert '<span id="l' in html and 'lang="zh-CN">兑换「热饮一杯」</span>' in html


@pytest.mark.parametrize(
    ("category", "shown", "hidden"),
    [
        ("pioneer", "党员先锋岗值守", "隐患上报"),
        ("governance", "隐患上报", "党员先锋岗值守"),
    ],
)
def test_the_category_filter_shows_only_that_category(web, partner_api, category, shown, hidden):
    post(partner_api, shift("s1"), hazard("h1"))
    response = web.get(f"/m/history?category={category}")
    page = text_of(response)
    assert shown in page and hidden not in page
    assert f'<option value="{category}" selected>' in response.get_data(as_text=True)


def test_an_empty_category_and_an_unknown_one(web, partner_api):
    post(partner_api, shift("s1"))
    assert "这个分类还没有记录" in text_of(web.get("/m/history?category=volunteer"))
    everything = text_of(web.get("/m/history?category=nonsense"))  # read as "all"
    assert "党员先锋岗值守" in everything


def test_the_filter_is_a_form_that_works_without_script(web):
    html = web.get("/m/history").get_data(as_text=True)
    form = re.search(r'<form method="get" action="/m/history".*?</form>', html, re.S).group(0)
    assert '<label for="category">' in form and 'id="category" name="category"' in form
    assert '<button type="submit">' in form


def test_twenty_lines_a_page_with_a_link_to_older_ones(web):
    rows = raw_lines(member_id("r1"), 25)
    first = web.get("/m/history")
    page = text_of(first)
    assert page.count("测试记录") == 20
    assert "测试记录 25" in page and "测试记录 06" in page and "测试记录 05" not in page
    link = re.search(r'href="(/m/history\?before=(\d+))"', first.get_data(as_text=True))
    assert int(link.group(2)) == rows[5].id  # the last line shown
    second = web.get(link.group(1))
    older = text_of(second)
    assert older.count("测试记录") == 5 and "测试记录 05" in older and "测试记录 01" in older
    assert "before=" not in second.get_data(as_text=True)  # nothing older
    assert "回到最新" in older


def test_pages_of_a_category_keep_the_category(web):
    member = member_id("r1")
    raw_lines(member, 21, category="volunteer")
    LedgerEntryFactory(member_id=member, seq=22, reason="先锋岗记录", category="pioneer")
    db.session.commit()
    first = web.get("/m/history?category=volunteer").get_data(as_text=True)
    assert "先锋岗记录" not in first
    link = re.search(r'href="(/m/history\?[^"]*before=\d+[^"]*)"', first).group(1)
    assert "category=volunteer" in link
    second = text_of(web.get(link.replace("&amp;", "&")))
    assert second.count("测试记录") == 1 and "测试记录 01" in second


def test_an_empty_ledger_says_how_to_earn(web):
    assert "还没有记录" in text_of(web.get("/m/history"))


def test_paging_from_another_members_line_is_not_found(app_ctx, web, partner_api):
    partner_api.put_member("r2", name="李大明")
    theirs = raw_lines(member_id("r2"), 3)
    raw_lines(member_id("r1"), 3)
    response = web.get(f"/m/history?before={theirs[-1].id}")
    assert response.status_code == 404 and "不属于你" in text_of(response)
    for bad in ("abc", "-1", "0", str(2**70)):
        assert web.get(f"/m/history?before={bad}").status_code == 404


def test_a_member_sees_only_their_own_lines(app_ctx, web, partner_api):
    partner_api.put_member("r2", name="李大明")
    post(partner_api, shift("s1", member="r2"))
    EventFactory(member_id=member_id("r2"), status="rejected", reason="别人的拒绝理由")
    db.session.commit()
    page = text_of(web.get("/m/history"))
    assert "党员先锋岗值守" not in page and "别人的拒绝理由" not in page
    assert "党员先锋岗值守" in text_of(sign_in(app_ctx, partner_api, "r2").get("/m/history"))


def test_waiting_refused_and_fruitless_activities_are_shown_with_an_appeal_link(web, partner_api):
    member = member_id("r1")
    post(partner_api, volunteer("v1"))  # verify: waits for the street to confirm
    post(partner_api, shift("s1", days_ago=3), shift("s1-again", days_ago=3))  # duplicate
    for i in range(6):  # the sixth hazard report of a day is over the count cap
        post(partner_api, hazard(f"h{i}", severity="low", days_ago=4))
    refused = EventFactory(member_id=member, org_code="sx.dt.pingcheng",
                           type="governance.hazard_report", status="rejected",
                           reason="照片无法看出隐患位置", occurred_at=local(5))  # fmt: skip
    unmatched = EventFactory(member_id=member, type="governance.hazard_report",
                             status="no_match", occurred_at=local(6))  # fmt: skip
    EventFactory(member_id=member, status="rejected", reason="太久以前的拒绝",
                 occurred_at=local(91))  # fmt: skip
    db.session.commit()
    response = web.get("/m/history")
    page = text_of(response)
    html = response.get_data(as_text=True)
    assert "需要留意的活动（最近 90 天）" in page
    pending = page[page.index("等待组织确认") :]
    assert "志愿服务时长" in pending and "志愿服务：待组织确认（确认后约 8 分）" in pending
    assert "未通过审核" in page and "照片无法看出隐患位置" in page
    assert "没有得到积分" in page
    assert "重复上报： 与已记录的同类时段重叠" in page
    assert "没有适用的积分规则" in page
    assert "本次计 0 分" in page and "每日限 5 次，已达上限" in page
    assert "太久以前的拒绝" not in page
    for event in (refused, unmatched):
        assert f'href="/m/appeals/new?event={event.id}"' in html
    pending_id = db.session.scalar(select(Event.id).where(Event.status == "pending"))
    assert f'href="/m/appeals/new?event={pending_id}"' in html


def test_attention_shows_only_on_the_first_page_of_everything(web):
    member = member_id("r1")
    EventFactory(member_id=member, status="rejected", reason="理由甲")
    raw_lines(member, 21)
    assert "理由甲" in text_of(web.get("/m/history"))
    assert "理由甲" not in text_of(web.get("/m/history?category=other"))
    first = web.get("/m/history").get_data(as_text=True)
    link = re.search(r'href="(/m/history\?before=\d+)"', first).group(1)
    assert "理由甲" not in text_of(web.get(link))


def test_every_line_links_to_an_appeal_about_it(web, partner_api):
    post(partner_api, shift("s1"))
    entry = db.session.scalar(select(LedgerEntry))
    html = web.get("/m/history").get_data(as_text=True)
    assert f'href="/m/appeals/new?entry={entry.id}" aria-describedby="l{entry.id}"' in html
    assert "有疑问？申诉" in html
    assert 'href="/m/appeals/new"' in html  # an activity missing altogether


def test_a_full_page_stays_small(web, partner_api):
    raw_lines(member_id("r1"), 25)
    response = web.get("/m/history")
    assert len(response.data) < 100_000 and "<script" not in response.get_data(as_text=True)
