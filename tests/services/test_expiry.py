"""Points expiry: what lapses at a cut-off in local time, oldest points spent first, refunds
counted back, nothing twice, the policy of the member's own tree, and the warning ahead."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.engine.model import Expiry
from app.extensions import db
from app.models import LedgerKind, Member, Organisation, RedemptionStatus
from app.services import rewards
from app.services.expiry import Lapse, expire_points, warning
from app.services.rules import current_rules

from ..factories import MemberFactory, OrganisationFactory
from ..partner_api import HOME, STATION
from ..rewards_support import SHANGHAI, SHOP, assert_ledger_consistent, balance, entries, give


def at(local: str) -> dt.datetime:
    """A Shanghai wall-clock time, ``2026-01-02 00:00``."""
    return dt.datetime.fromisoformat(local).replace(tzinfo=SHANGHAI)


def new_member(org: str = HOME) -> int:
    org_id = db.session.scalar(select(Organisation.id).where(Organisation.code == org))
    member = MemberFactory(primary_org_id=org_id)
    db.session.commit()
    return member.id


def credit(member: int, history: list[tuple[str, int]]) -> None:
    """Ledger entries at local times: positive ones are adjustments, negative ones spending."""
    for moment, points in history:
        give(member, points, at(moment), LedgerKind.ADJUST if points > 0 else LedgerKind.REDEEM)


def expired(member: int) -> list[int]:
    return [e.points for e in entries(member) if e.kind == LedgerKind.EXPIRE]


def test_the_shipped_rules_lapse_points_at_the_end_of_the_following_year(app_ctx):
    assert current_rules().expiry_for(HOME) == Expiry("end_of_following_year", None, 60)


def test_points_credited_in_2024_lapse_when_2026_begins(orgs):
    member = new_member()
    credit(member, [("2024-06-01 10:00", 100), ("2025-03-01 10:00", 50)])
    now = at("2026-01-02 10:00")
    report = expire_points(current_rules(), now)
    assert report == {"members": 1, "expired_members": 1, "points": 100}
    assert balance(member) == 50
    lapse = entries(member)[-1]
    assert (lapse.kind, lapse.points, lapse.ref) == ("expire", -100, "expiry:2025-01-01")
    assert lapse.created_at == now
    assert lapse.explanation["credits"] == 100
    assert_ledger_consistent(member)


@pytest.mark.parametrize(
    ("credited", "now", "lapsed"),
    [
        # the cut-off is local midnight of 1 January (16:00 UTC the day before)
        ("2024-06-01 10:00", "2025-12-31 23:59:59", []),
        ("2024-06-01 10:00", "2026-01-01 00:00", [-100]),
        ("2024-12-31 23:59:59", "2026-01-01 00:00", [-100]),
        # 2025-01-01 00:00 in Shanghai is still 2024 in UTC: it is a 2025 point all the same
        ("2025-01-01 00:00", "2026-01-01 00:00", []),
        ("2025-01-01 00:00", "2027-01-01 00:00", [-100]),
    ],
)
def test_the_cut_off_is_in_local_time(orgs, credited, now, lapsed):
    member = new_member()
    credit(member, [(credited, 100)])
    expire_points(current_rules(), at(now))
    assert expired(member) == lapsed


@pytest.mark.parametrize(
    ("history", "lapsed", "left"),
    [
        # the 30 spent in 2025 were 2024 points: 70 of those lapse, the 2025 points stay
        ([("2024-03-01 10:00", 100), ("2025-02-01 10:00", -30), ("2025-06-01 10:00", 50)],
         [-70], 50),
        # spending in 2024 itself comes out of 2024 points too
        ([("2024-03-01 10:00", 100), ("2024-09-01 10:00", -40), ("2025-06-01 10:00", 50)],
         [-60], 50),
        # spending more than the old points leaves nothing of them to lapse
        ([("2024-03-01 10:00", 100), ("2025-01-10 10:00", 50), ("2025-02-01 10:00", -120)],
         [], 30),
        # only points of two years back lapse
        ([("2025-03-01 10:00", 100), ("2025-12-31 10:00", -10)], [], 90),
    ],
)  # fmt: skip
def test_spending_uses_the_oldest_points_first_so_only_the_rest_lapses(orgs, history, lapsed, left):
    member = new_member()
    credit(member, history)
    expire_points(current_rules(), at("2026-01-02 10:00"))
    assert expired(member) == lapsed
    assert balance(member) == left
    assert_ledger_consistent(member)


def test_running_again_expires_nothing_more_until_the_next_cut_off(orgs):
    member = new_member()
    credit(member, [("2024-06-01 10:00", 100), ("2025-03-01 10:00", 50)])
    rules = current_rules()
    assert expire_points(rules, at("2026-01-02 10:00"))["points"] == 100
    for now in ("2026-01-02 10:00", "2026-01-03 10:00", "2026-12-31 23:59"):
        assert expire_points(rules, at(now)) == {"members": 1, "expired_members": 0, "points": 0}
    assert expired(member) == [-100]
    # the next year the 2025 points go, and the lapse already written counts as taken out
    assert expire_points(rules, at("2027-01-01 00:00"))["points"] == 50
    assert expired(member) == [-100, -50]
    assert balance(member) == 0
    assert expire_points(rules, at("2027-01-02 00:00"))["members"] == 0  # no balance left
    assert_ledger_consistent(member)


@pytest.mark.parametrize(("refunded", "lapsed"), [(False, [-95]), (True, [-100])])
def test_points_refunded_after_spending_count_as_never_spent(orgs, refunded, lapsed):
    member = new_member()
    credit(member, [("2024-06-01 10:00", 100)])
    rules = current_rules()
    drink = rewards.find_reward(rules, f"{STATION}:hot-drink")  # 5 points
    redemption, _ = rewards.redeem(rules, db.session.get(Member, member), drink,
                                   at("2025-05-01 10:00"))  # fmt: skip
    db.session.commit()
    if refunded:
        rewards.refund(redemption, RedemptionStatus.CANCELLED, "member", at("2025-05-01 11:00"))
        db.session.commit()
    expire_points(rules, at("2026-01-02 10:00"))
    assert expired(member) == lapsed
    assert balance(member) == 0
    assert_ledger_consistent(member)


def test_after_months_lapses_points_credited_that_many_months_back(rules_dir_extra, orgs):
    rules_dir_extra.add(SHOP, "expiry: {policy: after_months, months: 12, warn_days: 30}\n")
    OrganisationFactory(code=SHOP, kind="station")
    at_shop, at_home = new_member(SHOP), new_member(HOME)
    for member in (at_shop, at_home):
        credit(member, [("2025-03-01 10:00", 100), ("2025-09-01 10:00", 40)])
    rules = current_rules()
    assert rules.expiry_for(SHOP) == Expiry("after_months", 12, 30)
    report = expire_points(rules, at("2026-06-15 10:00"))
    assert report == {"members": 2, "expired_members": 1, "points": 100}
    assert expired(at_shop) == [-100]
    assert entries(at_shop)[-1].ref == "expiry:2025-06-15"
    assert expired(at_home) == []  # home keeps the province's policy: 2025 points last to 2027
    assert expire_points(rules, at("2026-09-01 10:01"))["points"] == 40
    assert (balance(at_shop), balance(at_home)) == (0, 140)


# --- the warning ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "warned"),
    [
        ("2025-10-01 10:00", False),
        ("2025-11-01 23:59", False),  # 60 days and a minute before the cut-off
        ("2025-11-02 00:00", True),  # 60 days: the policy's warn_days
        ("2025-12-31 23:00", True),
    ],
)
def test_the_warning_comes_within_the_warning_days_before_the_cut_off(orgs, now, warned):
    member = new_member()
    credit(member, [("2024-06-01 10:00", 100), ("2025-03-01 10:00", 50), ("2025-04-01", -30)])
    lapse = warning(current_rules(), db.session.get(Member, member), at(now))
    expected = Lapse(70, at("2026-01-01 00:00"), at("2025-01-01 00:00")) if warned else None
    assert lapse == expected


def test_no_warning_without_points_to_lapse(orgs):
    member = new_member()
    credit(member, [("2025-03-01 10:00", 50)])
    assert warning(current_rules(), db.session.get(Member, member), at("2025-12-01 10:00")) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 30 days ahead is 2026-03-12: points credited before 2025-03-12 lapse by then
        ("2026-02-10 10:00", Lapse(100, at("2026-03-12 10:00"), at("2025-03-12 10:00"))),
        ("2026-01-10 10:00", None),
    ],
)
def test_the_after_months_warning_looks_the_warning_days_ahead(
    rules_dir_extra, orgs, now, expected
):
    rules_dir_extra.add(SHOP, "expiry: {policy: after_months, months: 12, warn_days: 30}\n")
    OrganisationFactory(code=SHOP, kind="station")
    member = new_member(SHOP)
    credit(member, [("2025-03-01 10:00", 100), ("2025-09-01 10:00", 40)])
    assert warning(current_rules(), db.session.get(Member, member), at(now)) == expected
