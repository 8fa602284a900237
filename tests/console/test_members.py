"""Members in the console: search within the subtree, a member's page, manual adjustment
(one ``adjust`` entry, balance and lifetime moved, levels and boards following), and 404 for
a member of another subtree, whatever the URL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, LedgerEntry, LevelChange, Member, Organisation
from app.redis_client import get_redis
from app.services.boards import read

from ..factories import ConsoleUserFactory, MemberFactory, MemberOrgFactory
from ..rewards_support import assert_ledger_consistent, entries, give
from ..rewards_support import member_id as member_of
from ..web.conftest import text_of
from .test_console import sign_in


def org_id(code: str) -> int:
    return db.session.scalar(select(Organisation.id).where(Organisation.code == code))


def staff(app, role: str = "admin", org: str = "sx.dt", name: str = "staff"):
    ConsoleUserFactory(username=name, org_code=org, role=role)
    db.session.commit()
    return sign_in(app, name)


def adjust_form(points="30", reason="补记漏报的值守", category="pioneer") -> dict:
    return {"points": points, "reason": reason, "category": category}


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def taiyuan_rider(orgs) -> int:
    """A rider of Taiyuan: outside a Datong user's subtree."""
    member = MemberFactory(display_name="王太原", primary_org_id=org_id("sx.ty.xiaodian"))
    db.session.commit()
    return member.id


@pytest.mark.parametrize("role", ["admin", "verifier", "station", "viewer"])
def test_every_role_reads_members_and_only_admins_adjust(app_ctx, rider, role):
    member = member_of("r1")
    user = staff(app_ctx, role)
    assert "骑手" in text_of(user.client.get("/console/"))  # in everyone's menu
    assert user.client.get("/console/members").status_code == 200
    page = user.client.get(f"/console/members/{member}")
    assert page.status_code == 200
    assert ("手工调整积分" in text_of(page)) is (role == "admin")
    response = user.post(f"/console/members/{member}/adjust", adjust_form())
    assert response.status_code == (302 if role == "admin" else 403)
    assert count(LedgerEntry) == (1 if role == "admin" else 0)


def test_search_finds_by_name_any_case_or_by_partner_reference_in_the_subtree(
    app_ctx, rider, taiyuan_rider
):
    MemberFactory(display_name="Li Hua", primary_org_id=org_id("sx.dt.pingcheng"))
    db.session.commit()
    user = staff(app_ctx)
    assert "张小华" in text_of(user.client.get("/console/members?q=小华"))
    assert "Li Hua" in text_of(user.client.get("/console/members?q=li h"))
    by_ref = text_of(user.client.get("/console/members?q=r1"))
    assert "张小华" in by_ref and "Li Hua" not in by_ref
    everyone = text_of(user.client.get("/console/members"))
    assert "张小华" in everyone and "Li Hua" in everyone and "王太原" not in everyone
    assert "王太原" not in text_of(user.client.get("/console/members?q=王"))
    assert "没有找到" in text_of(user.client.get("/console/members?q=%"))  # no wildcard
    assert "没有找到" in text_of(user.client.get("/console/members?q=_"))


def test_a_member_taking_part_in_the_subtree_is_found_and_the_list_is_limited(
    app_ctx, taiyuan_rider
):
    MemberOrgFactory(member_id=taiyuan_rider, org_id=org_id("sx.dt.pingcheng"))
    for n in range(55):
        MemberFactory(display_name=f"同名骑手{n}", primary_org_id=org_id("sx.dt"))
    db.session.commit()
    user = staff(app_ctx)
    assert "王太原" in text_of(user.client.get("/console/members?q=太原"))
    assert user.client.get(f"/console/members/{taiyuan_rider}").status_code == 200
    response = user.client.get("/console/members?q=同名")
    assert response.text.count('href="/console/members/') == 50
    assert "只显示前 50 位" in text_of(response)


def test_the_member_page_shows_standing_and_ledger_but_never_the_phone(app_ctx, rider):
    member = member_of("r1")
    give(member, 5)
    give(member, -2)
    user = staff(app_ctx, "viewer")
    response = user.client.get(f"/console/members/{member}")
    page = text_of(response)
    assert "张小华" in page and "sx.dt.pingcheng" in page and "美团：r1" in page
    assert page.index("测试：-2 分") < page.index("测试：5 分")  # newest first
    m = db.session.get(Member, member)
    assert m.phone_hash and m.phone_hash not in response.text
    assert "13800138000" not in response.text


@pytest.mark.parametrize("path", ["/console/members/{id}", "/console/members/{id}/adjust"])
def test_a_member_of_another_subtree_is_not_found(app_ctx, rider, taiyuan_rider, path):
    user = staff(app_ctx)
    for member in (taiyuan_rider, 999_999):
        url = path.format(id=member)
        response = user.post(url, adjust_form()) if url.endswith("adjust") else user.client.get(url)
        assert response.status_code == 404 and "找不到" in text_of(response)
        assert "王太原" not in text_of(response)
    assert count(LedgerEntry) == 0 and count(AuditEntry) == 0


def test_an_adjustment_writes_one_entry_moves_the_totals_and_is_audited(app_ctx, rider):
    member = member_of("r1")
    give(member, 10)
    user = staff(app_ctx, org="sx.dt")
    response = user.post(f"/console/members/{member}/adjust", adjust_form("30", " 补记漏报的值守 "))
    assert response.status_code == 302
    assert "已调整 +30 分" in text_of(user.client.get(response.headers["Location"]))
    adjusts = [e for e in entries(member) if e.kind == "adjust" and e.points == 30]
    assert len(adjusts) == 1 and len(entries(member)) == 2
    (entry,) = adjusts
    assert (entry.org_code, entry.category, entry.reason) == ("sx.dt", "pioneer", "补记漏报的值守")
    assert entry.explanation == {"by": "staff", "reason": "补记漏报的值守"}
    m = db.session.get(Member, member)
    db.session.refresh(m)
    assert (m.balance, m.lifetime_points) == (40, 40)
    assert m.progress["cat"]["pioneer"] == 30  # counts towards points badges of its category
    assert_ledger_consistent(member)
    audit = db.session.scalar(select(AuditEntry))
    assert (audit.action, audit.target, audit.org_code) == ("member.adjust", f"member:{member}",
                                                            "sx.dt")  # fmt: skip
    assert audit.before["balance"] == 10 and audit.after["balance"] == 40
    assert audit.after["points"] == 30 and audit.after["reason"] == "补记漏报的值守"
    _, lines = read.page(get_redis(), "sx.dt", "all", "total", 10, 0)
    assert [(line.member_id, line.points) for line in lines] == [(member, 30)]


def test_a_large_adjustment_lifts_the_level_with_its_bonus(app_ctx, rider):
    member = member_of("r1")
    user = staff(app_ctx)
    user.post(f"/console/members/{member}/adjust", adjust_form("300", category="volunteer"))
    m = db.session.get(Member, member)
    db.session.refresh(m)
    assert m.level == "expert"
    assert [(e.kind, e.points) for e in entries(member)] == [("adjust", 300), ("bonus", 20)]
    assert (m.balance, m.lifetime_points) == (320, 320)
    assert count(LevelChange, LevelChange.member_id == member) == 2  # bee, then expert
    assert_ledger_consistent(member)
    assert "能手" in text_of(user.client.get(f"/console/members/{member}"))


def test_a_deduction_lowers_balance_and_lifetime_but_never_below_zero(app_ctx, rider):
    member = member_of("r1")
    give(member, 20)
    user = staff(app_ctx)
    refused = user.post(f"/console/members/{member}/adjust", adjust_form("-21"))
    assert refused.status_code == 400 and "余额只有 20 分" in text_of(refused)
    assert len(entries(member)) == 1 and count(AuditEntry) == 0
    assert user.post(f"/console/members/{member}/adjust", adjust_form("-20")).status_code == 302
    m = db.session.get(Member, member)
    db.session.refresh(m)
    assert (m.balance, m.lifetime_points) == (0, 0)
    assert_ledger_consistent(member)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (adjust_form(points=""), "请填写一个整数"),
        (adjust_form(points="abc"), "请填写一个整数"),
        (adjust_form(points="1.5"), "请填写一个整数"),
        (adjust_form(points="0"), "不能为 0"),
        (adjust_form(points="10001"), "不能超过"),
        (adjust_form(points="-10001"), "不能超过"),
        (adjust_form(reason=""), "原因请写"),
        (adjust_form(reason="    少于五    "), "原因请写"),
        (adjust_form(reason="长" * 501), "原因请写"),
        (adjust_form(category="bonus"), "请选择一个分类"),
    ],
)
def test_an_invalid_adjustment_writes_nothing_and_says_why(app_ctx, rider, form, message):
    member = member_of("r1")
    user = staff(app_ctx)
    response = user.post(f"/console/members/{member}/adjust", form)
    assert response.status_code == 400
    page = text_of(response)
    assert message in page and "积分没有变动" in page
    assert count(LedgerEntry) == 0 and count(AuditEntry) == 0
    assert db.session.get(Member, member).balance == 0


@pytest.mark.parametrize(("points", "reason"), [("10000", "五个字原因"), ("-0001", "长" * 500)])
def test_the_limits_themselves_are_allowed(app_ctx, rider, points, reason):
    member = member_of("r1")
    give(member, 1)
    user = staff(app_ctx)
    response = user.post(f"/console/members/{member}/adjust", adjust_form(points, reason))
    assert response.status_code == 302
    assert count(LedgerEntry, LedgerEntry.kind == "adjust") == 2  # give() adjusts too
    assert_ledger_consistent(member)


def erase_form(reason="本人书面申请删除", confirm="1") -> dict:
    return {"reason": reason, "confirm": confirm}


def test_an_admin_erases_a_member_who_then_leaves_search(app_ctx, rider):
    member = member_of("r1")
    give(member, 12)
    user = staff(app_ctx)
    page = text_of(user.client.get(f"/console/members/{member}"))
    assert "删除个人信息" in page
    response = user.post(f"/console/members/{member}/erase", erase_form())
    assert response.status_code == 302
    page = text_of(user.client.get(response.headers["Location"]))
    assert "已删除这位骑手的个人信息" in page and "个人信息已于" in page
    assert "张小华" not in page and "美团" not in page and "erased-" not in page
    assert "我确认删除" not in page  # no second erasure offered
    m = db.session.get(Member, member)
    db.session.refresh(m)
    assert m.erased_at is not None and m.phone_hash is None and m.balance == 12
    assert_ledger_consistent(member)
    for query in ("张小华", "小华", "r1", "13800138000", m.display_name, ""):
        found = text_of(user.client.get("/console/members", query_string={"q": query}))
        assert f'/console/members/{member}"' not in found and "张小华" not in found, query
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "member.erase"))
    assert (audit.username, audit.target) == ("staff", f"member:{member}")
    assert "张小华" not in str(audit.after) and "r1" not in str(audit.after)
    again = user.post(f"/console/members/{member}/erase", erase_form())
    assert again.status_code == 302
    assert "已经删除过了" in text_of(user.client.get(again.headers["Location"]))
    assert count(AuditEntry, AuditEntry.action == "member.erase") == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (erase_form(confirm=""), "请勾选确认"),
        (erase_form(reason="短"), "原因请写"),
        (erase_form(reason="张小华本人申请"), "不能写骑手的姓名"),
        (erase_form(reason="    "), "原因请写"),
    ],
)  # fmt: skip
def test_an_erasure_without_confirmation_or_a_proper_reason_changes_nothing(
    app_ctx, rider, form, message
):
    member = member_of("r1")
    user = staff(app_ctx)
    response = user.post(f"/console/members/{member}/erase", form)
    assert response.status_code == 400
    page = text_of(response)
    assert message in page and "个人信息没有删除" in page
    assert db.session.get(Member, member).erased_at is None
    assert count(AuditEntry) == 0


@pytest.mark.parametrize("role", ["verifier", "station", "viewer"])
def test_only_admins_may_erase(app_ctx, rider, role):
    member = member_of("r1")
    user = staff(app_ctx, role)
    assert "我确认删除" not in text_of(user.client.get(f"/console/members/{member}"))
    assert user.post(f"/console/members/{member}/erase", erase_form()).status_code == 403
    assert db.session.get(Member, member).erased_at is None


def test_an_admin_of_another_organisation_cannot_erase(app_ctx, rider, taiyuan_rider):
    user = staff(app_ctx)  # sx.dt
    for member in (taiyuan_rider, 999_999):
        response = user.post(f"/console/members/{member}/erase", erase_form())
        assert response.status_code == 404
    assert db.session.get(Member, taiyuan_rider).erased_at is None
    # a member who only takes part in the subtree is seen, but only their own organisation
    # (their primary one's subtree) may erase them
    MemberOrgFactory(member_id=taiyuan_rider, org_id=org_id("sx.dt.pingcheng"))
    db.session.commit()
    assert "我确认删除" not in text_of(user.client.get(f"/console/members/{taiyuan_rider}"))
    assert user.post(f"/console/members/{taiyuan_rider}/erase", erase_form()).status_code == 403
    assert db.session.get(Member, taiyuan_rider).erased_at is None
    assert count(AuditEntry) == 0


def test_the_erase_form_is_translated(app_ctx, rider):
    member = member_of("r1")
    user = staff(app_ctx)
    with user.client.session_transaction() as session:
        session["lang"] = "en"
    page = text_of(user.client.get(f"/console/members/{member}"))
    assert "Erase personal data" in page
