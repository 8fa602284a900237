"""The browser can open a login link and read the balance."""

from ..partner_api import shift
from .conftest import PHONE, screenshot


def test_a_rider_opens_the_link_and_reads_the_balance(live_server, browser, partner_api, rider):
    partner_api.post_event(shift("s1"))
    link = partner_api.client.post(
        "/api/v1/members/r1/login-link", headers=partner_api.headers
    ).json["url"]
    page = browser.new_page(viewport=PHONE, locale="zh-CN")
    page.goto(link.replace("http://localhost", live_server))
    assert page.url.endswith("/m/")
    assert page.locator(".big").inner_text() == "15"
    screenshot(page, "home-360")
    page.close()
