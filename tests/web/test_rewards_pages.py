"""The rewards pages: the city's catalogue by station with why not, redeeming through a
confirmation step, my redemptions with the code and its QR image, cancelling before pickup,
and a member never reaching another member's redemption."""

from __future__ import annotations

import datetime as dt
import re
import secrets

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import LedgerEntry, Redemption, RedemptionStatus
from app.models.base import utcnow
from app.web.pages import rewards as rewards_page

from ..factories import OrganisationFactory
from ..rewards_support import (
    PNG_SIGNATURE,
    SHOP,
    balance,
    count,
    give,
    install_shop,
    key,
    member_id,
    usage_rows,
)
from .conftest import sign_in, text_of

STATION_NAME = "平城测试驿站"


@pytest.fixture
def shop(rules_dir_extra, orgs):
    """The test station's rewards, with an organisation row naming the station."""
    OrganisationFactory(code=SHOP, name=STATION_NAME, kind="station")
    db.session.commit()
    return install_shop(rules_dir_extra)


@pytest.fixture
def me(web, shop) -> int:
    """r1 (signed in as ``web``), with the shop installed."""
    return member_id(web.ref)


def _redeem_url(reward_id: str) -> str:
    return f"/m/rewards/{key(reward_id)}/redeem"


def _confirm(web, reward_id: str, once: str | None = None):
    """POST the confirmation form, with its one-time value (a fresh one unless given)."""
    return web.post(_redeem_url(reward_id), {"once": once or secrets.token_urlsafe(16)})


def _redeem(web, reward_id: str) -> str:
    """Redeem through the confirmation page's form; the new redemption's code."""
    response = _confirm(web, reward_id)
    assert response.status_code == 302, text_of(response)
    location = response.headers["Location"]
    assert re.search(r"/m/redemptions/[A-Z0-9]{8}$", location), location
    return location.rsplit("/", 1)[1]


def _entry(response, name: str, tag: str = "li") -> str:
    """The text of the first ``<tag>`` of the page that names ``name``: one reward of the
    catalogue (``li``) or one line of a table (``tr``)."""
    html = response.get_data(as_text=True)
    for block in re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S):
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block)).strip()
        if name in text:
            return text
    raise AssertionError(f"no <{tag}> names {name!r}")


# --- the catalogue ---------------------------------------------------------------------------


def test_the_catalogue_shows_the_citys_rewards_by_station_with_the_balance(web, me):
    give(me, 12)
    response = web.get("/m/rewards")
    assert response.status_code == 200
    page = text_of(response)
    assert "可用积分 12" in page
    # the city of the home district (sx.dt): the test station, the Datong service centre and
    # drivers' home; none of Taiyuan's stations
    assert STATION_NAME in page and "大同市新就业群体服务中心" in page
    assert "司机热饭套餐" in page and "冬季防寒护具" in page
    assert "平阳路暖心驿站" not in page
    # the nearest stations first: the members' own district before the city's service centre
    assert page.index(STATION_NAME) < page.index("大同市新就业群体服务中心")
    tea = _entry(response, "姜茶一杯")
    assert "10 分" in tea and "库存 不限" in tea and "兑换后 3 天内" in tea
    assert "兑换 姜茶一杯" in tea  # the button, named for a screen reader
    assert "剩 2 份" in _entry(response, "爱心午餐")  # two a day, of five in all
    assert "每人每月限兑 1 次" in _entry(response, "雨衣")
    assert "测试赞助甲" in _entry(response, "手套")


def test_the_catalogue_says_why_a_reward_cannot_be_redeemed_now(web, me):
    give(me, 9)
    response = web.get("/m/rewards")
    assert "暂不能兑换：积分不足：需要 10 分，现有 9 分" in _entry(response, "姜茶一杯")
    assert "仅限党员兑换" in _entry(response, "党徽")
    assert "仅限本行业成员兑换" in _entry(response, "快递包")
    assert "仅限本组织及下属组织的成员兑换" in _entry(response, "太原公交卡")
    assert "需要先获得「" in _entry(response, "先锋帽")
    assert "需要达到「" in _entry(response, "头盔")
    assert "起可兑换" in _entry(response, "春节礼包")
    assert "兑换已于" in _entry(response, "中秋礼包")
    html = response.get_data(as_text=True)
    assert f'href="{_redeem_url("mug")}"' in html  # 5 points: within the balance
    assert f'href="{_redeem_url("tea")}"' not in html


def test_the_catalogue_says_when_the_limit_is_reached_and_the_days_share_is_gone(web, me):
    give(me, 10)
    _redeem(web, "raincoat")
    for _ in range(2):  # two lunches a day
        _redeem(web, "lunch")
    response = web.get("/m/rewards")
    assert "已达兑换次数上限（每人每月限兑 1 次）" in _entry(response, "雨衣")
    assert "今天的已兑完，明天再来" in _entry(response, "爱心午餐")


def test_stations_come_a_page_at_a_time(web, me, monkeypatch):
    monkeypatch.setattr(rewards_page, "STATIONS_PER_PAGE", 1)
    first = web.get("/m/rewards")
    assert STATION_NAME in text_of(first) and "大同市新就业群体服务中心" not in text_of(first)
    assert 'href="/m/rewards?page=2"' in first.get_data(as_text=True)
    pages = [text_of(web.get(f"/m/rewards?page={n}")) for n in (2, 3)]
    assert any("大同市新就业群体服务中心" in p for p in pages)
    assert "姜茶一杯" in text_of(web.get("/m/rewards?page=0"))  # out of range: the nearest
    assert web.get("/m/rewards?page=999").status_code == 200


def test_the_catalogue_page_is_small(web, me):
    assert len(web.get("/m/rewards").data) < 100_000


def test_the_catalogue_in_english_uses_the_english_names(web, me):
    web.get("/m/lang/en?next=/m/rewards")
    response = web.get("/m/rewards")
    html = response.get_data(as_text=True)
    assert 'lang="en"' in html and "Hot meal for drivers" in html
    assert "Datong New Employment Groups Service Centre" in html


# --- redeeming -------------------------------------------------------------------------------


def test_redeeming_goes_through_a_confirmation_step(web, me):
    give(me, 25)
    confirm = web.get(_redeem_url("tea"))
    assert confirm.status_code == 200
    page = text_of(confirm)
    assert "确认兑换" in page and "姜茶一杯" in page
    assert "所需积分 10" in page and "现有积分 25" in page and "兑换后剩余 15" in page
    assert f"领取地点 {STATION_NAME}" in page and "兑换后 3 天内" in page
    html = confirm.get_data(as_text=True)
    assert 'name="csrf"' in html and 'href="/m/rewards"' in html  # confirm, or go back
    assert count(Redemption) == 0 and balance(me) == 25  # looking writes nothing

    code = _redeem(web, "tea")
    assert balance(me) == 15
    row = db.session.scalar(select(Redemption))
    assert (row.code, row.member_id, row.cost, row.status) == (code, me, 10, "pending")
    shown = web.get(f"/m/redemptions/{code}")
    html = shown.get_data(as_text=True)
    assert "兑换成功" in text_of(shown)
    assert f'<p class="code">{code}</p>' in html
    img = re.search(
        r'<img class="qr" src="([^"]+)" alt="[^"]+" width="(\d+)" height="(\d+)">', html
    )
    assert img and img[1] == f"/m/redemptions/{code}/qr.png" and img[2] == img[3]
    assert f"领取地点 {STATION_NAME}" in text_of(shown) and "待领取" in text_of(shown)
    qr = web.get(img[1])
    assert qr.status_code == 200 and qr.data.startswith(PNG_SIGNATURE)
    assert qr.headers["Content-Type"] == "image/png" and qr.headers["Cache-Control"] == "private"


def test_the_confirmation_page_of_a_reward_out_of_reach_says_why_and_has_no_button(web, me):
    give(me, 3)
    page = web.get(_redeem_url("tea"))
    assert page.status_code == 200
    assert "暂不能兑换：积分不足：需要 10 分，现有 3 分" in text_of(page)
    assert "<form" not in page.get_data(as_text=True).split("<main", 1)[1]


def test_a_refused_redemption_shows_the_reason_and_writes_nothing(web, me):
    give(me, 3)
    before = (count(LedgerEntry), usage_rows())
    response = _confirm(web, "tea")
    assert response.status_code == 302 and response.headers["Location"].endswith("/m/rewards")
    page = web.get("/m/rewards").get_data(as_text=True)
    assert '<p class="error" role="status">积分不足：需要 10 分，现有 3 分</p>' in page
    assert count(Redemption) == 0 and balance(me) == 3
    assert (count(LedgerEntry), usage_rows()) == before


def test_a_refusal_found_after_the_points_were_taken_is_rolled_back(web, me):
    give(me, 30)
    for _ in range(2):  # the sponsor pays for two pairs of gloves a month
        _redeem(web, "gloves")
    entries, usage = count(LedgerEntry), usage_rows()
    response = _confirm(web, "gloves")
    assert response.status_code == 302
    assert "赞助方「测试赞助甲」本期预算已用完" in text_of(web.get("/m/rewards"))
    assert count(Redemption) == 2 and balance(me) == 10
    assert (count(LedgerEntry), usage_rows()) == (entries, usage)


def test_an_unknown_reward_is_a_readable_404(web, me):
    for path in ("/m/rewards/sx.dt.pingcheng.test-station:nothing/redeem", "/m/rewards/x/redeem"):
        response = web.get(path)
        assert response.status_code == 404 and "找不到" in text_of(response)
        assert web.post(path).status_code == 404
    assert count(Redemption) == 0


def test_redeeming_needs_the_forms_csrf_token(web, me):
    give(me, 25)
    response = web.client.post(_redeem_url("tea"), data={})
    assert response.status_code == 400 and "页面已过期" in text_of(response)
    assert count(Redemption) == 0 and balance(me) == 25


def test_the_pages_need_a_session(app_ctx, shop):
    client = app_ctx.test_client()
    for path in ("/m/rewards", _redeem_url("tea"), "/m/redemptions", "/m/redemptions/ABCD2345"):
        assert client.get(path).status_code == 401


# --- my redemptions --------------------------------------------------------------------------


def test_my_redemptions_are_listed_newest_first_with_their_status_in_words(web, me):
    assert "还没有兑换记录" in text_of(web.get("/m/redemptions"))
    give(me, 20)
    first, second = _redeem(web, "raincoat"), _redeem(web, "mug")
    db.session.execute(
        Redemption.__table__.update()
        .where(Redemption.code == first)
        .values(status=RedemptionStatus.CONFIRMED, decided_at=utcnow())
    )
    db.session.commit()
    response = web.get("/m/redemptions")
    page, html = text_of(response), response.get_data(as_text=True)
    assert page.index("保温杯") < page.index("雨衣")
    assert "待领取" in _entry(response, "保温杯", "tr")
    assert "已领取" in _entry(response, "雨衣", "tr")
    for code in (first, second):
        assert f'href="/m/redemptions/{code}"' in html


def test_a_redemption_past_its_time_says_so_and_shows_no_qr(web, me):
    give(me, 5)
    code = _redeem(web, "mug")
    row = db.session.scalar(select(Redemption))
    row.expires_at = utcnow() - dt.timedelta(minutes=1)
    db.session.commit()
    response = web.get(f"/m/redemptions/{code}")
    assert "已过期，积分将自动退回" in text_of(response)
    assert "qr.png" not in response.get_data(as_text=True)


def test_cancelling_before_pickup_gives_the_points_back(web, me):
    give(me, 5)
    code = _redeem(web, "mug")
    assert balance(me) == 0
    response = web.post(f"/m/redemptions/{code}/cancel")
    assert response.status_code == 302 and response.headers["Location"].endswith(code)
    assert balance(me) == 5
    row = db.session.scalar(select(Redemption))
    assert (row.status, row.decided_by) == ("cancelled", "member")
    assert row.refund_entry_id is not None
    page = web.get(f"/m/redemptions/{code}")
    assert "已取消兑换，5 分已退回" in text_of(page) and "已取消，积分已退回" in text_of(page)
    assert "/cancel" not in page.get_data(as_text=True)  # no button any more
    again = web.post(f"/m/redemptions/{code}/cancel")
    assert again.status_code == 302
    assert "这个兑换已无法取消" in text_of(web.get(f"/m/redemptions/{code}"))
    assert balance(me) == 5


def test_cancelling_needs_the_forms_csrf_token(web, me):
    give(me, 5)
    code = _redeem(web, "mug")
    assert web.client.post(f"/m/redemptions/{code}/cancel", data={}).status_code == 400
    assert db.session.scalar(select(Redemption.status)) == "pending" and balance(me) == 0


def test_another_members_redemption_is_not_found(app_ctx, partner_api, web, me):
    partner_api.put_member("r2", name="李大明")
    other = sign_in(app_ctx, partner_api, "r2")
    give(member_id("r2"), 5)
    code = _redeem(other, "mug")
    for path in (f"/m/redemptions/{code}", f"/m/redemptions/{code}/qr.png"):
        response = web.get(path)
        assert response.status_code == 404 and "找不到" in text_of(response)
        assert code not in text_of(response)
    assert web.post(f"/m/redemptions/{code}/cancel").status_code == 404
    assert db.session.scalar(select(Redemption.status)) == "pending"
    assert balance(member_id("r2")) == 0
    assert code not in web.get("/m/redemptions").get_data(as_text=True)
    assert other.get(f"/m/redemptions/{code.lower()}").status_code == 200  # its owner's


@pytest.mark.parametrize("code", ["ABCD2345", "AB", "X" * 17, "ABCD-234", "兑换码兑换码"])
def test_unknown_or_malformed_codes_are_not_found(web, me, code):
    assert web.get(f"/m/redemptions/{code}").status_code == 404
    assert web.get(f"/m/redemptions/{code}/qr.png").status_code == 404


def test_a_double_tap_on_confirm_redeems_once(web, me):
    give(me, 100)
    page = web.get(_redeem_url("tea")).get_data(as_text=True)
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)
    first = _confirm(web, "tea", once)
    assert re.search(r"/m/redemptions/[A-Z0-9]{8}$", first.headers["Location"])
    second = _confirm(web, "tea", once)
    assert second.headers["Location"].endswith("/m/redemptions")
    assert "已经提交过" in text_of(web.get("/m/redemptions"))
    assert count(Redemption) == 1 and balance(me) == 90
