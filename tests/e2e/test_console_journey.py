"""An organisation's staff member's journey through the console in headless Chromium, on a
desktop and on a phone: sign in, approve a pending volunteer event in the verification queue,
confirm a pickup at the redemption desk, declare an emergency and end it, check a broken
version of the organisation's own rules file, whose error is shown with its line number, then
a good one, see its simulation and publish it.

The data is made through the fixtures and committed before the browser opens (the live
server's requests run in threads of their own, each with its own database session); the
browser alone does the rest, and the database is read afresh at the end."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Emergency, Event, Member, Redemption
from app.services import rewards
from app.services.rules import files_in_force, registry

from ..conftest import ROOT
from ..factories import ConsoleUserFactory, OrganisationFactory
from ..jobs.test_jobs import run_queued_jobs
from ..partner_api import volunteer
from ..rewards_support import SHANGHAI, SHOP, give, install_shop, key, member_id
from .conftest import DESKTOP, PHONE, screenshot

USERNAME, PASSWORD = "dt-admin", "secret-pass"  # ConsoleUserFactory's password
ORG = "sx.dt"  # the user's organisation: r1's city
REGION = "sx.dt.pingcheng"  # where the emergency is declared
STATION_NAME = "平城测试驿站"
REWARD, REWARD_NAME = "tea", "姜茶一杯"
EMERGENCY = "平城区暴雪应急"
OWN_FILE = (ROOT / "rules" / f"{ORG}.yaml").read_text(encoding="utf-8")
BROKEN_LINE = "name: 大同市"  # given a second colon below: a YAML syntax error on its line
RENAMED = "name: 大同市（新）"  # the good version the walk publishes
VIEWPORTS = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


@dataclass(frozen=True)
class Desk:
    event_id: int
    code: str


@pytest.fixture
def console_data(partner_api, rider, rules_dir_extra) -> Desk:
    """An admin of Datong; r1 with volunteer hours waiting for verification and a pending
    redemption at the test station; all committed."""
    ConsoleUserFactory(username=USERNAME, org_code=ORG, role="admin", display_name="大同管理员")
    OrganisationFactory(code=SHOP, name=STATION_NAME, kind="station")
    db.session.commit()
    response = partner_api.post_event(volunteer("v1"))
    assert response.json["status"] == "pending", response.json
    event_id = db.session.scalar(select(Event.id).where(Event.status == "pending"))
    rules = install_shop(rules_dir_extra)
    give(member_id("r1"), 50)
    member = db.session.get(Member, member_id("r1"))
    redemption, _ = rewards.redeem(rules, member, rewards.find_reward(rules, key(REWARD)))
    code = redemption.code
    db.session.commit()  # the browser's requests must see it all; the test holds no lock
    return Desk(event_id=event_id, code=code)


def _menu(page: Page):
    return page.get_by_role("navigation", name="后台菜单")


def _go(page: Page, link_name: str, url: str) -> None:
    """Follow a link of the console's menu and wait for the page to load."""
    _menu(page).get_by_role("link", name=link_name, exact=True).click()
    page.wait_for_url(url)
    expect(_menu(page).get_by_role("link", name=link_name, exact=True)).to_have_attribute(
        "aria-current", "page"
    )


def _broken_file() -> tuple[str, int]:
    """The organisation's own file with a YAML syntax error, and the error's line."""
    lines = OWN_FILE.split("\n")
    line = lines.index(BROKEN_LINE) + 1
    lines[line - 1] = f"{BROKEN_LINE}: 平城"  # "mapping values are not allowed here"
    return "\n".join(lines), line


def walk(page: Page, base: str, desk: Desk, shots: str) -> None:
    def shot(step: str) -> None:
        screenshot(page, f"{shots}-{step}")

    # sign in with username and password: the overview, with the menu of an admin
    page.goto(f"{base}/console/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("组织后台登录")
    expect(_menu(page)).to_have_count(0)
    page.get_by_label("用户名").fill(USERNAME)
    page.get_by_label("密码").fill(PASSWORD)
    shot("login")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base}/console/")
    expect(page.get_by_role("banner")).to_contain_text(f"大同管理员 · {ORG}")
    for area in ("待确认", "兑换核销", "应急状态", "规则"):
        expect(_menu(page).get_by_role("link", name=area, exact=True)).to_be_visible()
    shot("overview")

    # the verification queue: tick r1's volunteer hours and approve them
    _go(page, "待确认", f"{base}/console/verify")
    row = page.get_by_role("row").filter(has_text="张小华")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("志愿服务时长")
    row.get_by_role("checkbox", name="志愿服务时长").check()
    shot("queue")
    page.get_by_role("button", name="确认所选").click()
    page.wait_for_url(f"{base}/console/verify")
    expect(page.get_by_role("status")).to_contain_text("已处理 1 项，跳过 0 项")
    expect(page.get_by_role("main")).to_contain_text("没有待确认的活动。")
    shot("queue-done")

    # the redemption desk: type the code (in lower case), look it up, confirm the pickup
    _go(page, "兑换核销", f"{base}/console/desk")
    page.get_by_label("兑换码（输入或扫码）").fill(desk.code.lower())
    page.get_by_role("button", name="查询").click()
    page.wait_for_url(re.compile(r"/console/desk\?code="))
    found = page.get_by_role("region", name=REWARD_NAME)
    expect(found).to_contain_text(desk.code)
    expect(found).to_contain_text("等待领取")
    expect(found).to_contain_text("张*华")  # masked
    expect(found).to_contain_text(STATION_NAME)
    shot("desk")
    found.get_by_role("button", name="确认领取").click()
    page.wait_for_url(f"{base}/console/desk?code={desk.code}")
    expect(page.get_by_role("status")).to_have_text(f"已确认领取：{REWARD_NAME}。")
    expect(found).to_contain_text("已领取")
    expect(found.get_by_role("button", name="确认领取")).to_have_count(0)
    shot("desk-done")

    # emergency mode: declare a snowstorm in Pingcheng until tomorrow, then end it
    _go(page, "应急状态", f"{base}/console/emergencies")
    expect(page.get_by_role("main")).to_contain_text("还没有宣布过应急状态")
    tomorrow = dt.datetime.now(SHANGHAI) + dt.timedelta(days=1)
    page.get_by_label("地区（组织编码）").fill(REGION)
    page.get_by_label("名称", exact=True).fill(EMERGENCY)
    page.get_by_label("类型").select_option(label="暴雪")
    page.get_by_label("计划结束时间").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    shot("emergency-form")
    page.get_by_role("button", name="宣布").click()
    page.wait_for_url(f"{base}/console/emergencies")
    expect(page.get_by_role("status")).to_have_text(f"已宣布应急状态“{EMERGENCY}”。")
    row = page.get_by_role("row").filter(has_text=EMERGENCY)
    expect(row.get_by_role("cell")).to_have_text(
        [EMERGENCY, "暴雪", REGION, re.compile(r"\d"), re.compile(r"\d"), "生效中", "立即结束"]
    )
    shot("emergency")
    row.get_by_role("button", name="立即结束").click()
    page.wait_for_url(f"{base}/console/emergencies")
    expect(page.get_by_role("status")).to_have_text(f"已结束应急状态“{EMERGENCY}”。")
    expect(row).to_contain_text("已结束")
    expect(row).to_contain_text("提前结束于")
    expect(row.get_by_role("button")).to_have_count(0)
    shot("emergency-ended")

    # rules: the form holds the organisation's own file; a broken version shows its line
    _go(page, "规则", f"{base}/console/rules")
    text = page.get_by_label("规则文件内容（YAML）")
    expect(text).to_have_value(OWN_FILE)
    broken, line = _broken_file()
    text.fill(broken)
    page.get_by_role("button", name="检查并模拟").click()
    page.wait_for_url(f"{base}/console/rules/check")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"规则检查：{ORG}.yaml")
    expect(page.get_by_role("alert")).to_contain_text("这个版本不能使用")
    expect(page.get_by_role("status")).to_contain_text("现行规则没有任何改变")
    found = page.get_by_role("region", name="检查结果")
    where = found.get_by_role("link", name=re.compile(rf"^{re.escape(ORG)}\.yaml:{line}:"))
    expect(where).to_have_attribute("href", f"#L{line}")
    expect(found.get_by_role("row").filter(has_text=f"{ORG}.yaml:{line}:")).to_contain_text(
        "YAML syntax error"
    )
    listing = page.get_by_role("region", name="提交的文件")
    marked = listing.get_by_role("row").filter(has_text=f"第 {line} 行")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text(f"{BROKEN_LINE}: 平城")
    expect(marked).to_have_class("error")
    expect(listing.locator("tr.error")).to_have_count(1)  # only the broken line is marked
    shot("rules-error")

    # a good version: check → the simulation's page → publish what was simulated
    _go(page, "规则", f"{base}/console/rules")
    page.get_by_label("规则文件内容（YAML）").fill(OWN_FILE.replace(BROKEN_LINE, RENAMED, 1))
    page.get_by_role("button", name="检查并模拟").click()
    page.wait_for_url(f"{base}/console/rules/check")
    expect(page.get_by_text("没有错误，规则可以加载。")).to_be_visible()
    run_queued_jobs()  # a real Redis: the simulation waits for a worker
    page.get_by_role("link", name="查看模拟进度和结果").click()
    page.wait_for_url(re.compile(r".*/console/rules/simulations/.+"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("模拟：")
    shot("rules-simulation")
    page.get_by_label("说明（可选）").fill("改名")
    page.get_by_role("button", name="发布新版本").click()
    page.wait_for_url(f"{base}/console/rules/publish")
    expect(page.get_by_role("heading", level=1)).to_contain_text("已发布")
    shot("rules-published")

    # every page of the menu opens (and the test's policy watch sees each of them)
    hrefs = (
        _menu(page)
        .get_by_role("link")
        .evaluate_all("links => links.map(a => a.getAttribute('href'))")
    )
    for href in hrefs:
        response = page.goto(base + href)
        assert response is not None and response.status == 200, href
        expect(page.get_by_role("heading", level=1)).to_have_count(1)


def _check_database(desk: Desk) -> None:
    db.session.remove()  # read afresh what the browser's requests committed
    assert RENAMED in files_in_force()[f"{ORG}.yaml"]  # the published version is in force
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "rules.publish"))
    assert db.session.get(Event, desk.event_id).status == "awarded"
    redemption = db.session.scalar(select(Redemption).where(Redemption.code == desk.code))
    assert redemption.status == "confirmed" and redemption.decided_at is not None
    emergency = db.session.scalar(select(Emergency))
    assert (emergency.name, emergency.kind, emergency.org_code) == (EMERGENCY, "snowstorm", REGION)
    assert emergency.ended_at is not None


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_staff_member_approves_confirms_a_pickup_runs_an_emergency_and_checks_rules(
    request, viewport, live_server, new_context, console_data, csp_violations
):
    name = request.node.callspec.id
    page = new_context(viewport).new_page()
    try:
        walk(
            page,
            live_server,
            console_data,
            "e2e-console" if name == "desktop" else f"e2e-console-{name}",
        )
        _check_database(console_data)
        assert not csp_violations  # every console page: styles from the stylesheet only
    finally:
        registry().reload()  # the walk published a version: RULES_DIR's again for the next
