"""The browser can open a login link and read the balance, and the API's documentation page."""

from ..partner_api import shift
from .conftest import DESKTOP, PHONE, screenshot, watch_policies


def test_a_rider_opens_the_link_and_reads_the_balance(live_server, browser, partner_api, rider):
    partner_api.post_event(shift("s1"))
    link = partner_api.client.post(
        "/api/v1/members/r1/login-link", headers=partner_api.headers
    ).json["url"]
    page = browser.new_page(viewport=PHONE, locale="zh-CN")
    violations = []
    watch_policies(page, violations)
    page.goto(link.replace("http://localhost", live_server))
    assert page.url.endswith("/m/")
    assert page.locator(".big").inner_text() == "15"
    screenshot(page, "home-360")
    page.close()
    assert not violations, violations


def test_the_api_docs_page_is_styled_by_its_own_stylesheet(live_server, new_context):
    page = new_context(DESKTOP).new_page()
    response = page.goto(f"{live_server}/api/docs")
    assert response is not None and response.status == 200
    operation = page.locator("section.op").first
    assert operation.evaluate("s => getComputedStyle(s).borderTopStyle") == "solid"
    screenshot(page, "api-docs")
