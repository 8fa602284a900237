"""A rider's journey through the pages in headless Chromium, on a phone and on a desktop: open
the login link, read the balance, read the history, switch a leaderboard, redeem a reward and
see its code and QR image, switch to English. The same journey with JavaScript disabled, a
reused link, and what each page weighs.

The data is made through the fixtures and committed before the browser opens: the live
server's requests run in threads of their own, each with its own database session."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from app.services.boards.keys import mask_name
from app.web.pages.boards import TOP as BOARD_TOP
from app.web.pages.history import PAGE as HISTORY_PAGE

from ..conftest import local
from ..factories import OrganisationFactory
from ..partner_api import hazard, shift
from ..rewards_support import SHOP, balance, entries, give, install_shop, key, member_id
from ..web.conftest import login_link
from .conftest import DESKTOP, PHONE, screenshot

CITY = "sx.dt"  # the members' city: one of r1's boards
STATION_NAME = "平城测试驿站"
REWARD, REWARD_NAME, REWARD_COST = "mug", "保温杯", 5
TODAY = local(0, 0).isoformat()  # this week and this month, whatever day the tests run
OTHERS = [("o1", "李小明", 3), ("o2", "王小红", 1)]  # (ref, name, high hazards today)
MENU_ZH = ["首页", "明细", "排行", "徽章", "兑换", "诉求", "志愿证明", "设置"]
MENU_EN = ["Home", "History", "Rankings", "Badges", "Rewards", "Appeals",
           "Volunteer certificate", "Settings"]  # fmt: skip
PAGE_BUDGET = 100 * 1024  # bytes of HTML + CSS (+ images but the QR) a page may transfer
VIEWPORTS = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]


@dataclass(frozen=True)
class Rider:
    """What the browser should find: r1's login link (on the live server), balance and
    number of ledger lines."""

    link: str
    balance: int
    lines: int
    others: tuple[str, ...]  # the names of the others on r1's boards


def _post(api, events: list[dict]) -> None:
    response = api.post_batch(events)
    assert response.status_code == 200 and response.json["accepted"] == len(events), response.json


def set_up(live_server, partner_api, rules_dir_extra, others=OTHERS, adjustments=0) -> Rider:
    """r1 (the ``rider`` fixture) with a shift yesterday and two hazard reports today, plus
    ``adjustments`` small ledger lines; ``others`` on its boards; the test station's rewards;
    everything committed; a fresh login link for r1."""
    OrganisationFactory(code=SHOP, name=STATION_NAME, kind="station")
    db.session.commit()
    install_shop(rules_dir_extra)
    events = [shift("s1"), hazard("h1", occurred_at=TODAY), hazard("h2", occurred_at=TODAY)]
    for ref, name, reports in others:
        response = partner_api.put_member(ref, name=name, industry="delivery")
        assert response.status_code == 201, response.json
        events += [hazard(f"{ref}-{i}", member=ref, occurred_at=TODAY) for i in range(reports)]
    _post(partner_api, events)
    me = member_id("r1")
    for _ in range(adjustments):
        give(me, 1)
    rider = Rider(
        link=live_server + login_link(partner_api, "r1"),
        balance=balance(me),
        lines=len(entries(me)),
        others=tuple(name for _ref, name, _reports in others),
    )
    assert rider.balance >= REWARD_COST + 10, rider  # enough for the mug, whatever the rules
    db.session.commit()  # the browser's requests must see it all; the test holds no lock
    return rider


@pytest.fixture
def rider_data(live_server, partner_api, rider, rules_dir_extra) -> Rider:
    return set_up(live_server, partner_api, rules_dir_extra)


def _menu(page: Page):
    return page.locator("nav.main")  # its label is translated; the class is the menu's own


def _go(page: Page, link_name: str, url: str | re.Pattern) -> None:
    """Follow a link of the main menu and wait for the page to load."""
    _menu(page).get_by_role("link", name=link_name, exact=True).click()
    page.wait_for_url(url)


def walk(page: Page, base: str, rider: Rider, shots: str | None) -> str:
    """The journey, from the login link to the English menu; screenshots
    ``e2e-<shots>-<step>.png`` unless ``shots`` is None. The redemption's code.

    Playwright's own evaluations run even where the page's JavaScript is disabled, so the
    checks of styles and images below hold in both cases."""

    def shot(step: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"], f"{step}: {width} px wide"  # no sideways
        if shots:
            screenshot(page, f"e2e-{shots}-{step}")

    # the login link: the session starts and the home page shows the balance
    page.goto(rider.link)
    page.wait_for_url(f"{base}/m/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(_menu(page).get_by_role("link")).to_have_text(MENU_ZH)
    card = page.get_by_role("region", name="可用积分")
    expect(card.locator(".big")).to_have_text(f"{rider.balance:,}")
    shot("home")

    # history, through the menu: every ledger line, the hazards' +10 among them
    _go(page, "明细", f"{base}/m/history")
    ledger = page.get_by_role("region", name="全部记录")
    shown = min(rider.lines, HISTORY_PAGE)
    expect(ledger.locator("tbody tr")).to_have_count(shown)
    expect(ledger.get_by_role("link", name="有疑问？申诉")).to_have_count(shown)
    if rider.lines <= HISTORY_PAGE:
        expect(ledger.locator("tbody tr").filter(has_text="+10")).to_have_count(2)
    else:
        expect(page.get_by_role("link", name="更早的记录")).to_be_visible()
    shot("history")

    # rankings: switch to the city's board of this month; r1's row is highlighted
    _go(page, "排行", f"{base}/m/boards")
    form = page.get_by_role("form", name="选择榜单")
    form.get_by_label("榜单", exact=True).select_option(CITY)
    form.get_by_label("周期", exact=True).select_option("month")
    form.get_by_role("button", name="查看").click()
    page.wait_for_url(re.compile(rf"/m/boards\?scope={re.escape(CITY)}&period=month&"))
    board = page.get_by_role("region", name=re.compile(r"^大同市 · 本月 · "))
    mine = board.locator("tbody tr.me")
    expect(mine).to_have_count(1)
    expect(mine.get_by_role("rowheader")).to_have_text(f"{mask_name('张小华')} （我）")
    if len(rider.others) < BOARD_TOP:  # all on the page, by masked names only
        expect(board.locator("tbody tr:not(.me)")).to_have_count(len(rider.others))
        for name in rider.others:
            expect(board).to_contain_text(mask_name(name))
    for name in rider.others:
        expect(board).not_to_contain_text(name)
    colour = mine.evaluate("tr => getComputedStyle(tr).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour  # highlighted
    shot("boards")

    # rewards: the mug, through the confirmation step, then its code and QR image
    _go(page, "兑换", f"{base}/m/rewards")
    expect(page.get_by_role("region", name=STATION_NAME)).to_be_visible()
    shot("rewards")
    page.get_by_role("link", name=f"立即兑换 {REWARD_NAME}", exact=True).click()
    page.wait_for_url(f"{base}/m/rewards/{key(REWARD)}/redeem")
    expect(page.get_by_role("heading", level=1)).to_have_text("确认兑换")
    expect(page.get_by_role("heading", level=2)).to_have_text(REWARD_NAME)
    shot("confirm")
    page.get_by_role("button", name="确认兑换").click()
    page.wait_for_url(re.compile(r"/m/redemptions/[A-Z0-9]{8}$"))
    expect(page.get_by_role("status")).to_contain_text("兑换成功")
    code = page.locator(".code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{8}", code) and page.url.endswith(f"/{code}"), code
    qr = page.get_by_role("img", name=f"兑换码 {code} 的二维码")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 0  # the image loaded
    shot("code")

    # English, through the footer's switch: back on the same page, the menu in English
    page.get_by_role("contentinfo").get_by_role("link", name="English").click()
    page.wait_for_url(f"{base}/m/redemptions/{code}")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".code")).to_have_text(code)
    expect(_menu(page).get_by_role("link")).to_have_text(MENU_EN)
    shot("english")
    _go(page, "Home", f"{base}/m/")
    expect(page.locator(".big").first).to_have_text(f"{rider.balance - REWARD_COST:,}")
    shot("english-home")
    return code


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_rider_goes_from_the_login_link_to_a_reward_code_and_english(
    request, viewport, live_server, new_context, rider_data, csp_violations
):
    name = request.node.callspec.id
    page = new_context(viewport).new_page()
    walk(page, live_server, rider_data, shots=name)
    assert not csp_violations  # every style from the stylesheet, every image from here


def test_a_reused_login_link_shows_the_friendly_already_used_page(
    live_server, new_context, partner_api, rider, csp_violations
):
    link = live_server + login_link(partner_api, rider)
    db.session.commit()
    first = new_context().new_page()
    first.goto(link)
    first.wait_for_url(f"{live_server}/m/")

    page = new_context().new_page()
    response = page.goto(link)
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("无法登录")
    expect(page.get_by_role("main")).to_contain_text("这个登录链接已经用过了")
    expect(_menu(page)).to_have_count(0)  # no session: no member's menu
    expect(page.get_by_role("main")).not_to_contain_text("Traceback")
    screenshot(page, "e2e-phone-link-used")
    assert not csp_violations


def every_page(page: Page, base: str, code: str) -> list[str]:
    """The URL of every rider page: the menu's (read from the page shown), the confirmation
    of a redemption, my redemptions, one redemption, a new appeal, a filtered history."""
    menu = [base + href for href in _menu(page).get_by_role("link").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")]  # fmt: skip
    return [
        *menu,
        f"{base}/m/history?category=governance",
        f"{base}/m/rewards/{key(REWARD)}/redeem",
        f"{base}/m/redemptions",
        f"{base}/m/redemptions/{code}",
        f"{base}/m/appeals/new",
    ]


def test_every_page_works_with_javascript_disabled(
    live_server, new_context, rider_data, csp_violations
):
    page = new_context(PHONE, java_script_enabled=False).new_page()
    code = walk(page, live_server, rider_data, shots=None)
    for url in every_page(page, live_server, code):
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        expect(page.get_by_role("heading", level=1)).to_have_count(1)
        expect(_menu(page).get_by_role("link")).to_have_text(MENU_EN)
    # a form that changes something, without JavaScript: cancel the redemption
    page.goto(f"{live_server}/m/redemptions/{code}")
    page.locator(f"form[action='/m/redemptions/{code}/cancel']").get_by_role("button").click()
    page.wait_for_url(f"{live_server}/m/redemptions/{code}")
    expect(page.get_by_role("status")).to_have_count(1)  # the flash: cancelled, points back
    expect(page.get_by_role("img")).to_have_count(0)  # no QR for a cancelled redemption
    assert not csp_violations  # on every rider page, the policy refused nothing


def test_every_page_transfers_under_100_kb(live_server, new_context, partner_api, rider,
                                          rules_dir_extra):  # fmt: skip
    """HTML, CSS and images (the QR image aside) of each page, with the cache off, on a full
    page of history and a full board (20 others)."""
    crowd = [(f"c{k:02d}", f"赵小{k:02d}", k % 4 + 1) for k in range(20)]
    rider_data = set_up(live_server, partner_api, rules_dir_extra, crowd, adjustments=25)
    page = new_context(PHONE).new_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    code = walk(page, live_server, rider_data, shots=None)
    urls = every_page(page, live_server, code)

    responses = []
    page.on("response", lambda response: responses.append(response))
    weights = {}
    for url in urls:
        responses.clear()
        page.goto(url)
        page.wait_for_load_state("load")
        counted = [
            r for r in responses
            if r.request.resource_type in ("document", "stylesheet", "image", "font", "script")
            and not r.url.endswith("/qr.png")
        ]  # fmt: skip
        assert any(r.request.resource_type == "stylesheet" for r in counted), url
        weights[url] = sum(
            s["responseBodySize"] + s["responseHeadersSize"]
            for s in (r.request.sizes() for r in counted)
        )
    assert len(weights) == len(urls)
    heavy = {url: size for url, size in weights.items() if size >= PAGE_BUDGET}
    assert not heavy, heavy
    assert all(size > 1000 for size in weights.values()), weights  # it did count something
