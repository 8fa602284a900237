"""Jobs and commands of badges, rewards and expiry: rank badges at period close, the
re-evaluation of badges, expiring redemptions and points from the command line."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import BadgeGrant, BoardPeriod, Event, LedgerEntry, Member, PartnerMember
from app.services.honours import close_badges, grant_rank_badges
from app.services.rules import current_rules

from ..factories import BoardArchiveFactory, BoardPeriodFactory, OrganisationFactory
from ..partner_api import shift

STREET = "sx.ty.xiaodian.pingyang"


def _members(partner_api, n: int) -> list[int]:
    for i in range(n):
        assert partner_api.put_member(f"m{i}", name=f"骑手{i}").status_code == 201
    return [
        db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == f"m{i}"))
        for i in range(n)
    ]


def _archive(period: str, kind: str, scope: str, ids: list[int], category: str = "total"):
    BoardPeriodFactory(period=period, kind=kind)
    for position, member_id in enumerate(ids, 1):
        BoardArchiveFactory(scope=scope, period=period, category=category, position=position,
                            rank=position, member_id=member_id, points=100 - position)  # fmt: skip
    db.session.commit()


def _grants(badge: str) -> list[tuple]:
    return db.session.execute(
        select(BadgeGrant.member_id, BadgeGrant.period, BadgeGrant.reason)
        .where(BadgeGrant.badge == badge)
        .order_by(BadgeGrant.member_id)
    ).all()


def test_a_closed_month_grants_the_street_top_ten_once(partner_api):
    ids = _members(partner_api, 12)
    _archive("2026-10", "month", STREET, ids)
    _archive("2026-09", "month", "sx.ty.xiaodian", ids)  # a district's board: not a street's
    reports = close_badges(current_rules())
    assert [(r["period"], r["granted"]) for r in reports] == [("2026-09", 0), ("2026-10", 10)]
    grants = _grants("sx:street-top10")
    assert [g.member_id for g in grants] == sorted(ids[:10])
    assert {g.period for g in grants} == {"2026-10"}
    first = next(g for g in grants if g.member_id == ids[0])
    assert first.reason == "平阳路街道 2026-10 月榜第 1 名"
    assert db.session.get(BoardPeriod, "2026-10").badges_at is not None
    # again: nothing new, by the period's mark and by the grants already made
    assert close_badges(current_rules()) == []
    assert grant_rank_badges(current_rules(), "2026-10")["granted"] == 0
    assert len(_grants("sx:street-top10")) == 10


def test_a_city_badge_counts_only_its_own_city_and_category(partner_api):
    ids = _members(partner_api, 3)
    _archive("2026-10", "month", "sx.dt", ids[:1], category="volunteer")
    BoardArchiveFactory(scope="sx.ty", period="2026-10", category="volunteer", position=1,
                        rank=1, member_id=ids[1], points=50)  # fmt: skip
    BoardArchiveFactory(scope="sx.dt", period="2026-10", category="total", position=1,
                        rank=1, member_id=ids[2], points=50)  # fmt: skip
    db.session.commit()
    close_badges(current_rules())
    assert [g.member_id for g in _grants("sx.dt:dt-volunteer-month")] == [ids[0]]


def test_recheck_withdraws_a_badge_no_longer_earned_and_reverses_its_bonus(partner_api, runner):
    partner_api.put_member("r1")
    for i in range(10):
        assert (
            partner_api.post_event(shift(f"s{i}", member="r1", days_ago=1 + i)).status_code == 201
        )
    member = db.session.scalar(select(Member))
    assert len(_grants("sx:pioneer-10")) == 1
    # a recalculation rejected one of the shifts: nine are left
    event = db.session.scalar(select(Event).where(Event.partner_event_id == "s0"))
    event.status = "rejected"
    db.session.commit()
    result = runner.invoke(args=["badges", "recheck"])
    assert result.exit_code == 0, result.output
    assert "1 withdrawn" in result.output
    grant = db.session.scalar(select(BadgeGrant))
    assert grant.revoked_at is not None and "不再满足" in grant.revoked_reason
    reversal = db.session.scalar(select(LedgerEntry).where(LedgerEntry.kind == "reverse"))
    assert reversal.points == -20 and reversal.ref == "badge-revoke:sx:pioneer-10#1"
    db.session.refresh(member)
    total = db.session.scalar(select(func.sum(LedgerEntry.points)))
    assert member.balance == total
    assert member.progress["n"]["pioneer.shift"] == 9 and member.progress["b"] == {
        "sx:pioneer-10": 0
    }
    again = runner.invoke(args=["badges", "recheck"])
    assert "0 grant(s) made, 0 withdrawn" in again.output


def test_recheck_grants_a_badge_a_new_rules_file_defines(partner_api, rules_dir_extra, runner):
    OrganisationFactory(code="sx.dt.pingcheng.test-station", kind="station")
    db.session.commit()
    partner_api.put_member("r1", primary_org="sx.dt.pingcheng.test-station")
    partner_api.put_member("r2")  # elsewhere: the new badge is not theirs
    for i in range(3):
        partner_api.post_event(shift(f"s{i}", member="r1", days_ago=1 + i))
        partner_api.post_event(shift(f"t{i}", member="r2", days_ago=1 + i))
    assert _grants("sx.dt.pingcheng.test-station:three-shifts") == []
    rules_dir_extra.add(
        "sx.dt.pingcheng.test-station",
        """
        badges:
          - {id: three-shifts, name: 三班, condition: {kind: event_count, on: pioneer.shift,
             at_least: 3}, bonus: 5}
        """,
    )
    result = runner.invoke(args=["badges", "recheck"])
    assert result.exit_code == 0, result.output
    assert "rechecked 2 member(s): 1 grant(s) made, 0 withdrawn" in result.output
    (grant,) = _grants("sx.dt.pingcheng.test-station:three-shifts")
    r1 = db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == "r1"))
    assert grant.member_id == r1
    member = db.session.get(Member, r1)
    db.session.refresh(member)
    assert (
        member.balance
        == 45 + 5
        == db.session.scalar(
            select(func.sum(LedgerEntry.points)).where(LedgerEntry.member_id == r1)
        )
    )


@pytest.mark.parametrize("command", [["rewards", "expire"], ["points", "expire"]])
def test_the_expiry_commands_run_and_report(partner_api, runner, command):
    partner_api.put_member("r1")
    partner_api.post_event(shift("s1", member="r1"))
    result = runner.invoke(args=command)
    assert result.exit_code == 0, result.output
    assert ("expired and refunded: 0" in result.output) or ("0 point(s)" in result.output)


def test_points_expire_on_schedule_from_the_command_line(partner_api, runner, monkeypatch):
    partner_api.put_member("r1")
    partner_api.post_event(shift("s1", member="r1"))
    entry = db.session.scalar(select(LedgerEntry))
    # credited two years ago: lapsed at the start of last year under end_of_following_year
    entry.created_at = entry.created_at - dt.timedelta(days=800)
    db.session.commit()
    result = runner.invoke(args=["points", "expire"])
    assert result.exit_code == 0, result.output
    assert "15 point(s) of 1 member(s) expired" in result.output
    member = db.session.scalar(select(Member))
    assert member.balance == 0
    assert runner.invoke(args=["points", "expire"]).output.count("0 point(s)") == 1
