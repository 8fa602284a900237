"""The audit log page: admins only, their subtree's entries only, newest first, in pages."""

from __future__ import annotations

import re

import pytest

from app.extensions import db

from ..factories import AuditEntryFactory, ConsoleUserFactory
from ..rewards_support import member_id
from ..web.conftest import text_of
from .test_console import sign_in


def staff(app, role: str = "admin", org: str = "sx.dt", name: str = "staff"):
    ConsoleUserFactory(username=name, org_code=org, role=role)
    db.session.commit()
    return sign_in(app, name)


def targets(response) -> list[str]:
    return re.findall(r"<td>(target-[^<]+)</td>", response.text)


@pytest.mark.parametrize(("role", "allowed"), [("admin", True), ("verifier", False),
                                               ("station", False), ("viewer", False)])  # fmt: skip
def test_only_admins_read_the_audit_log(app_ctx, orgs, role, allowed):
    user = staff(app_ctx, role)
    assert user.client.get("/console/audit").status_code == (200 if allowed else 403)
    assert ("操作记录" in text_of(user.client.get("/console/"))) is allowed


def test_the_log_shows_the_subtree_only_newest_first_with_before_and_after(app_ctx, orgs):
    for org in ("sx.dt", "sx.dt.pingcheng", "sx", "sx.ty.xiaodian", "sx.dtx"):
        AuditEntryFactory(org_code=org, target=f"target-{org}", action="member.adjust",
                          before={"balance": 10}, after={"balance": 40, "points": 30})  # fmt: skip
    db.session.commit()
    datong = staff(app_ctx, org="sx.dt", name="datong")
    response = datong.client.get("/console/audit")
    assert targets(response) == ["target-sx.dt.pingcheng", "target-sx.dt"]
    assert "balance: 10 → 40" in text_of(response) and "points: — → 30" in text_of(response)
    taiyuan = staff(app_ctx, org="sx.ty", name="taiyuan")
    assert targets(taiyuan.client.get("/console/audit")) == ["target-sx.ty.xiaodian"]
    province = staff(app_ctx, org="sx", name="province")
    assert len(targets(province.client.get("/console/audit"))) == 5


def test_the_log_pages_by_a_hundred_entries(app_ctx, orgs):
    for n in range(105):
        AuditEntryFactory(org_code="sx.dt.pingcheng", target=f"target-{n:03d}")
    AuditEntryFactory(org_code="sx.ty", target="target-elsewhere")
    db.session.commit()
    user = staff(app_ctx)
    first = user.client.get("/console/audit")
    shown = targets(first)
    assert len(shown) == 100 and shown[0] == "target-104" and shown[-1] == "target-005"
    more = re.search(r'href="(/console/audit\?before=\d+)"', first.text).group(1)
    second = user.client.get(more)
    assert targets(second) == [f"target-{n:03d}" for n in (4, 3, 2, 1, 0)]
    assert "before=" not in second.text  # the last page has no link on
    for junk in ("abc", "-1", "99999999999999999999999"):
        assert len(targets(user.client.get(f"/console/audit?before={junk}"))) == 100


def test_a_console_change_appears_in_the_log(app_ctx, rider):
    user = staff(app_ctx)
    member = member_id("r1")
    user.post(f"/console/members/{member}/adjust",
              {"points": "12", "reason": "补记志愿服务时长", "category": "volunteer"})  # fmt: skip
    page = text_of(user.client.get("/console/audit"))
    assert "member.adjust" in page and f"member:{member}" in page and "staff" in page
    assert "balance: 0 → 12" in page
