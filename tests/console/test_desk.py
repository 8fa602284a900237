"""The redemption desk: who may use it, codes of other subtrees not found, pickup confirmed
once, an overdue redemption refunded instead."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, LedgerEntry, Member, Redemption, RedemptionStatus
from app.models.base import utcnow
from app.services import rewards

from ..factories import ConsoleUserFactory
from ..rewards_support import SHOP, assert_ledger_consistent, balance, give, install_shop, key
from ..rewards_support import member_id as member_of
from ..web.conftest import text_of
from .test_console import sign_in

OTHER_STATION = "sx.ty.xiaodian.pingyang.station-01"


@pytest.fixture
def shop(rules_dir_extra, rider):
    """The test station's rewards, and r1 (a rider of its district) with 50 points."""
    rules = install_shop(rules_dir_extra)
    give(member_of("r1"), 50)
    return rules


def redeem(rules, reward: str, at: dt.datetime | None = None) -> Redemption:
    member = db.session.get(Member, member_of("r1"))
    r, _ = rewards.redeem(rules, member, rewards.find_reward(rules, key(reward)), at)
    db.session.commit()
    return r


def staff(app, role: str = "station", org: str = SHOP, name: str = "desk"):
    ConsoleUserFactory(username=name, org_code=org, role=role)
    db.session.commit()
    return sign_in(app, name)


@pytest.mark.parametrize(("role", "allowed"), [("admin", True), ("station", True),
                                               ("verifier", False), ("viewer", False)])  # fmt: skip
def test_only_admins_and_station_staff_reach_the_desk(app_ctx, shop, role, allowed):
    r = redeem(shop, "tea")
    user = staff(app_ctx, role, "sx.dt")
    assert user.client.get("/console/desk").status_code == (200 if allowed else 403)
    assert user.client.get(f"/console/desk?code={r.code}").status_code == (200 if allowed else 403)
    assert user.post(f"/console/desk/{r.code}/confirm").status_code == (302 if allowed else 403)
    db.session.refresh(r)
    assert r.status == ("confirmed" if allowed else "pending")
    menu = text_of(user.client.get("/console/"))
    assert ("兑换核销" in menu) is allowed


def test_the_desk_shows_what_a_code_is_for_with_the_name_masked(app_ctx, shop):
    r = redeem(shop, "tea")
    desk = staff(app_ctx)
    page = text_of(desk.client.get(f"/console/desk?code={r.code.lower()}"))  # typed in lower case
    assert "姜茶一杯" in page and r.code in page and "等待领取" in page and "确认领取" in page
    assert "张*华" in page and "张小华" not in page  # the rider's name, masked
    assert SHOP in page  # the station (no organisation row: its code)


def test_a_code_of_another_subtree_is_not_found_and_cannot_be_confirmed(app_ctx, shop):
    r = redeem(shop, "tea")
    elsewhere = staff(app_ctx, "station", OTHER_STATION)
    lookup = elsewhere.client.get(f"/console/desk?code={r.code}")
    assert lookup.status_code == 404
    page = text_of(lookup)
    assert "找不到兑换码" in page and "姜茶一杯" not in page and "张*华" not in page
    # the same answer as for a code that does not exist at all
    assert elsewhere.client.get("/console/desk?code=NOSUCH99").status_code == 404
    assert elsewhere.client.get("/console/desk?code=../x").status_code == 404
    assert elsewhere.post(f"/console/desk/{r.code}/confirm").status_code == 404
    db.session.refresh(r)
    assert r.status == "pending"
    assert db.session.scalar(select(AuditEntry)) is None


def test_confirming_a_pickup_records_who_and_audits_it(app_ctx, shop):
    r = redeem(shop, "tea")
    desk = staff(app_ctx)
    response = desk.post(f"/console/desk/{r.code}/confirm")
    assert response.status_code == 302
    shown = desk.client.get(response.headers["Location"])
    page = text_of(shown)
    assert "已确认领取：姜茶一杯" in page and "已领取" in page
    assert "/confirm" not in shown.text  # no button any more
    db.session.refresh(r)
    assert (r.status, r.decided_by) == ("confirmed", "console:desk")
    entry = db.session.scalar(select(AuditEntry))
    assert (entry.action, entry.target, entry.org_code, entry.username) == (
        "redemption.confirm",
        f"redemption:{r.code}",
        SHOP,
        "desk",
    )
    assert (entry.before, entry.after) == ({"status": "pending"}, {"status": "confirmed"})
    assert balance(member_of("r1")) == 40  # the points were taken when it was redeemed


def test_a_decided_redemption_shows_its_status_and_is_not_confirmed_again(app_ctx, shop):
    r = redeem(shop, "tea")
    desk = staff(app_ctx)
    desk.post(f"/console/desk/{r.code}/confirm")
    again = desk.post(f"/console/desk/{r.code}/confirm")
    assert "不能再确认" in text_of(desk.client.get(again.headers["Location"]))
    assert len(db.session.scalars(select(AuditEntry)).all()) == 1  # the first confirmation only
    rewards.refund(redeem(shop, "mug"), RedemptionStatus.CANCELLED, "member")
    db.session.commit()
    cancelled = db.session.scalar(select(Redemption).where(Redemption.status == "cancelled"))
    shown = desk.client.get(f"/console/desk?code={cancelled.code}")
    assert "已取消，积分已退回" in text_of(shown) and "/confirm" not in shown.text


def test_an_overdue_redemption_is_refunded_instead_of_handed_out(app_ctx, shop):
    r = redeem(shop, "ice-cream", utcnow() - dt.timedelta(hours=2))  # one hour to pick it up
    desk = staff(app_ctx)
    page = text_of(desk.client.get(f"/console/desk?code={r.code}"))
    assert "已超过领取时间" in page
    response = desk.post(f"/console/desk/{r.code}/confirm")
    page = text_of(desk.client.get(response.headers["Location"]))
    assert "按过期处理" in page and "已过期，积分已退回" in page
    db.session.refresh(r)
    assert r.status == "expired" and r.refund_entry_id is not None
    member = member_of("r1")
    assert balance(member) == 50
    refund = db.session.get(LedgerEntry, r.refund_entry_id)
    assert (refund.kind, refund.points) == ("refund", 1)
    assert_ledger_consistent(member)
    entry = db.session.scalar(select(AuditEntry))
    assert (entry.action, entry.after) == ("redemption.confirm", {"status": "expired"})
