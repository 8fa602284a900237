"""The rewards service at fixed moments: stock per period within a total, limits per member
per period, sponsors' budgets in points and in yuan and what they have paid for, what a
cancellation or an expiry gives back, and the expiry job beside a redemption."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select, text

from app.errors import Conflict
from app.extensions import db
from app.models import Member, Redemption, RedemptionStatus
from app.services import rewards

from ..rewards_support import (
    SHANGHAI,
    SHOP,
    assert_ledger_consistent,
    balance,
    entries,
    give,
    install_shop,
    key,
    member_id,
    usage_rows,
    used,
)

NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)  # a Tuesday
DAY = dt.timedelta(days=1)


@pytest.fixture
def shop(rules_dir_extra):
    return install_shop(rules_dir_extra)


@pytest.fixture
def riders(partner_api) -> list[int]:
    """Two riders of the members' home district, r1 and r2."""
    for ref in ("r1", "r2"):
        assert partner_api.put_member(ref).status_code == 201
    return [member_id("r1"), member_id("r2")]


def redeem(rules, member: int, reward: str, now: dt.datetime):
    """Redeem as the API does: commit, or roll a refusal back; the redemption or the refusal."""
    try:
        redemption, _ = rewards.redeem(
            rules, db.session.get(Member, member), rewards.find_reward(rules, key(reward)), now
        )
    except Conflict as refusal:
        db.session.rollback()
        return refusal
    db.session.commit()
    return redemption


def refused(outcome, code: str) -> dict:
    assert isinstance(outcome, Conflict), outcome
    assert outcome.code == code, (outcome.code, outcome.details)
    return outcome.details


def stock_left(rules, reward: str, now: dt.datetime) -> int | None:
    return rewards.stock_left(rewards.find_reward(rules, key(reward)), now.astimezone(SHANGHAI))


# --- stock ---------------------------------------------------------------------------------


def test_a_per_period_stock_is_shared_out_day_by_day_within_the_total(shop, riders):
    a, b = riders
    give(a, 10)
    give(b, 10)
    counter = f"reward:{key('lunch')}"  # two a day, five in all
    assert stock_left(shop, "lunch", NOW) == 2
    assert isinstance(redeem(shop, a, "lunch", NOW), Redemption)
    assert isinstance(redeem(shop, b, "lunch", NOW), Redemption)
    assert stock_left(shop, "lunch", NOW) == 0
    assert refused(redeem(shop, a, "lunch", NOW), "out_of_stock") == {
        "stock_per_period": 2, "period": "day:2026-03-10"
    }  # fmt: skip
    # the day turns at local midnight (16:00 UTC)
    midnight = dt.datetime(2026, 3, 11, tzinfo=SHANGHAI)
    assert refused(redeem(shop, a, "lunch", midnight - dt.timedelta(seconds=1)),
                   "out_of_stock")["period"] == "day:2026-03-10"  # fmt: skip
    assert stock_left(shop, "lunch", midnight) == 2
    for member in (a, b):
        assert isinstance(redeem(shop, member, "lunch", midnight), Redemption)
    assert stock_left(shop, "lunch", NOW + 2 * DAY) == 1  # the total has one left
    assert isinstance(redeem(shop, a, "lunch", NOW + 2 * DAY), Redemption)
    assert refused(redeem(shop, b, "lunch", NOW + 2 * DAY), "out_of_stock") == {"stock": 5}
    assert stock_left(shop, "lunch", NOW + 3 * DAY) == 0
    assert (used(counter), used(counter, "day:2026-03-10"), used(counter, "day:2026-03-11"),
            used(counter, "day:2026-03-12")) == (5, 2, 2, 1)  # fmt: skip
    assert (balance(a), balance(b)) == (7, 8)


# --- limits --------------------------------------------------------------------------------


def test_a_limit_per_member_per_period_counts_each_members_redemptions_in_the_period(shop, riders):
    a, b = riders
    give(a, 10)
    give(b, 10)
    first = redeem(shop, a, "raincoat", NOW)  # once a month
    assert isinstance(first, Redemption)
    refusal = redeem(shop, a, "raincoat", NOW + 5 * DAY)
    assert refused(refusal, "limit_reached") == {"limit": 1, "per": "month", "redeemed": 1}
    assert "每月限兑 1 次" in refusal.message
    assert isinstance(redeem(shop, b, "raincoat", NOW), Redemption)  # the limit is per member
    april = dt.datetime(2026, 4, 1, tzinfo=SHANGHAI)
    assert refused(redeem(shop, a, "raincoat", april - dt.timedelta(seconds=1)),
                   "limit_reached")["redeemed"] == 1  # fmt: skip
    again = redeem(shop, a, "raincoat", april)
    assert isinstance(again, Redemption)
    # a cancelled redemption no longer counts against the limit
    rewards.refund(again, RedemptionStatus.CANCELLED, "member", april + DAY)
    db.session.commit()
    assert isinstance(redeem(shop, a, "raincoat", april + 2 * DAY), Redemption)
    assert balance(a) == 10 - 3 + 1


# --- sponsors ------------------------------------------------------------------------------


def test_a_sponsors_budget_in_points_runs_out_for_the_period_and_names_the_sponsor(shop, riders):
    a, b = riders
    give(a, 30)
    give(b, 30)
    for member in (a, b):  # the gloves cost 10 points; the sponsor pays for 20 a month
        assert isinstance(redeem(shop, member, "gloves", NOW), Redemption)
    refusal = redeem(shop, a, "gloves", NOW)
    assert refused(refusal, "out_of_stock") == {"sponsor": "测试赞助甲", "period": "month:2026-03"}
    assert "测试赞助甲" in refusal.message
    assert isinstance(redeem(shop, a, "gloves", dt.datetime(2026, 4, 1, tzinfo=SHANGHAI)),
                      Redemption)  # fmt: skip
    assert used(f"reward:{key('gloves')}") == 3  # the refused one took no stock
    assert rewards.sponsor_spend(shop, SHOP) == [
        {"sponsor": "测试赞助甲", "period": "month:2026-03", "redemptions": 2, "points": 20,
         "yuan": 0.0},
        {"sponsor": "测试赞助甲", "period": "month:2026-04", "redemptions": 1, "points": 10,
         "yuan": 0.0},
    ]  # fmt: skip
    assert rewards.sponsor_spend(shop, SHOP, "month:2026-04") == [
        {"sponsor": "测试赞助甲", "period": "month:2026-04", "redemptions": 1, "points": 10,
         "yuan": 0.0}
    ]  # fmt: skip


def test_a_sponsors_budget_in_yuan_pays_for_whole_items_only(shop, riders):
    a, b = riders
    give(a, 30)
    give(b, 30)
    # 12.5 yuan an item from a budget of 30 a month: two items (25), not a third (37.5)
    assert isinstance(redeem(shop, a, "topup", NOW), Redemption)
    assert isinstance(redeem(shop, b, "topup", NOW), Redemption)
    refusal = redeem(shop, a, "topup", NOW)
    assert refused(refusal, "out_of_stock") == {"sponsor": "测试赞助乙", "period": "month:2026-03"}
    assert "测试赞助乙" in refusal.message
    assert rewards.sponsor_spend(shop, SHOP) == [
        {"sponsor": "测试赞助乙", "period": "month:2026-03", "redemptions": 2, "points": 10,
         "yuan": 25.0}
    ]  # fmt: skip
    assert (balance(a), balance(b)) == (25, 25)


def test_sponsor_spend_covers_the_organisation_and_below_it_only(shop, riders):
    a, _ = riders
    give(a, 30)
    redeem(shop, a, "gloves", NOW)
    redeem(shop, a, "topup", NOW)
    spent = {(s["sponsor"], s["yuan"]) for s in rewards.sponsor_spend(shop, "sx.dt.pingcheng")}
    assert spent == {("测试赞助甲", 0.0), ("测试赞助乙", 12.5)}
    assert rewards.sponsor_spend(shop, "sx.ty") == []  # its sponsors have paid for nothing


# --- giving back ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reward", "status"),
    [
        ("mug", RedemptionStatus.CANCELLED),  # a total
        ("lunch", RedemptionStatus.CANCELLED),  # a day's stock and the total
        ("gloves", RedemptionStatus.EXPIRED),  # stock and a sponsor's points
        ("topup", RedemptionStatus.EXPIRED),  # a sponsor's yuan
    ],
)
def test_a_refund_gives_back_the_points_the_stock_and_the_sponsors_budget(
    shop, riders, reward, status
):
    a, _ = riders
    give(a, 10)
    left = stock_left(shop, reward, NOW)
    redemption = redeem(shop, a, reward, NOW)
    taken = usage_rows()
    assert taken and all(n == 1 for _, _, n, _, _ in taken)
    assert balance(a) == 10 - redemption.cost

    assert rewards.refund(redemption, status, "member", NOW + DAY) == 10
    db.session.commit()
    assert usage_rows() == [(k, p, 0, 0, 0) for k, p, _, _, _ in taken]
    assert stock_left(shop, reward, NOW) == left
    refund = entries(a)[-1]
    assert (refund.kind, refund.points, refund.ref) == (
        "refund", redemption.cost, f"redemption:{redemption.code}"
    )  # fmt: skip
    row = db.session.get(Redemption, redemption.id)
    assert (row.status, row.refund_entry_id, row.decided_by) == (status, refund.id, "member")
    assert_ledger_consistent(a)


def test_a_refund_of_a_decided_redemption_is_refused_and_gives_nothing_back(shop, riders):
    a, _ = riders
    give(a, 10)
    redemption = redeem(shop, a, "mug", NOW)
    rewards.refund(redemption, RedemptionStatus.CANCELLED, "member", NOW)
    db.session.commit()
    with pytest.raises(Conflict) as refusal:
        rewards.refund(redemption, RedemptionStatus.CANCELLED, "member", NOW)
    assert (refusal.value.code, refusal.value.details["status"]) == ("not_pending", "cancelled")
    db.session.rollback()
    assert balance(a) == 10 and used(f"reward:{key('mug')}") == 0
    assert [e.kind for e in entries(a)] == ["adjust", "redeem", "refund"]


# --- expiry of redemptions -----------------------------------------------------------------


def test_expire_due_refunds_what_was_not_picked_up_in_time_once(shop, riders):
    a, _ = riders
    give(a, 20)
    ice = redeem(shop, a, "ice-cream", NOW)  # one hour to pick it up
    eaten = redeem(shop, a, "ice-cream", NOW)
    mug = redeem(shop, a, "mug", NOW)  # the default: 72 hours
    rewards.confirm(eaten, "partner:shop", NOW + dt.timedelta(minutes=30))
    db.session.commit()
    assert rewards.expire_due(NOW + dt.timedelta(minutes=59)) == 0
    assert rewards.expire_due(NOW + dt.timedelta(hours=1)) == 1  # expires_at itself is late
    db.session.commit()
    assert db.session.get(Redemption, ice.id).status == RedemptionStatus.EXPIRED
    assert db.session.get(Redemption, eaten.id).status == RedemptionStatus.CONFIRMED
    assert db.session.get(Redemption, mug.id).status == RedemptionStatus.PENDING
    assert balance(a) == 20 - 1 - 1 - 5 + 1
    assert rewards.expire_due(NOW + dt.timedelta(hours=73)) == 1  # the mug, and its stock
    db.session.commit()
    assert used(f"reward:{key('mug')}") == 0
    assert balance(a) == 19
    for later in (74, 200):  # nothing is refunded twice
        assert rewards.expire_due(NOW + dt.timedelta(hours=later)) == 0
        db.session.commit()
    refunds = [e for e in entries(a) if e.kind == "refund"]
    assert [(e.points, e.ref) for e in refunds] == [
        (1, f"redemption:{ice.code}"), (5, f"redemption:{mug.code}")
    ]  # fmt: skip
    expired = db.session.scalars(
        select(Redemption.decided_by).where(Redemption.status == RedemptionStatus.EXPIRED)
    ).all()
    assert expired == ["expiry", "expiry"]
    assert_ledger_consistent(a)


def test_confirming_after_the_pickup_time_expires_and_refunds_instead(shop, riders):
    a, _ = riders
    give(a, 10)
    ice = redeem(shop, a, "ice-cream", NOW)
    late = NOW + dt.timedelta(hours=2)
    assert rewards.confirm(ice, "partner:shop", late).status == RedemptionStatus.EXPIRED
    db.session.commit()
    row = db.session.get(Redemption, ice.id)
    assert (row.status, row.decided_by, row.decided_at) == ("expired", "expiry", late)
    assert balance(a) == 10
    assert rewards.expire_due(late) == 0  # the job has nothing left to do
    db.session.commit()
    assert [e.kind for e in entries(a)] == ["adjust", "redeem", "refund"]


def test_confirming_in_time_is_a_pickup(shop, riders):
    a, _ = riders
    give(a, 10)
    ice = redeem(shop, a, "ice-cream", NOW)
    on_time = NOW + dt.timedelta(minutes=59)
    assert rewards.confirm(ice, "partner:shop", on_time).status == RedemptionStatus.CONFIRMED
    db.session.commit()
    row = db.session.get(Redemption, ice.id)
    assert (row.status, row.decided_by, row.decided_at) == ("confirmed", "partner:shop", on_time)
    assert balance(a) == 9 and row.refund_entry_id is None


def test_the_expiry_job_and_a_redemption_of_the_same_reward_both_complete(
    app, shop, riders, monkeypatch
):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers queue on BEGIN IMMEDIATE: they cannot deadlock")
    a, y = riders
    give(a, 10)
    give(y, 10)
    first, second = redeem(shop, a, "mug", NOW), redeem(shop, y, "mug", NOW)
    for r, hours in ((first, 2), (second, 1)):  # a's is due first, then y's
        db.session.get(Redemption, r.id).expires_at = NOW - dt.timedelta(hours=hours)
    db.session.commit()
    db.session.remove()
    refunded_one, go_on = threading.Event(), threading.Event()
    real_refund = rewards.refund

    def refund_then_wait(*args, **kwargs):
        balance_ = real_refund(*args, **kwargs)
        if not refunded_one.is_set():  # the job holds the mug's stock row now
            refunded_one.set()
            go_on.wait(10)
        return balance_

    monkeypatch.setattr(rewards.redemption, "refund", refund_then_wait)
    outcome = {}

    def job():
        with app.app_context():
            try:
                outcome["job"] = rewards.expire_due(NOW)
                db.session.commit()
            except Exception as exc:
                outcome["job"] = exc
            finally:
                db.session.remove()

    def redemption():
        with app.app_context():
            try:
                outcome["redeem"] = redeem(shop, y, "mug", NOW)
            except Exception as exc:
                outcome["redeem"] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=job), threading.Thread(target=redemption)]
    threads[0].start()
    assert refunded_one.wait(10)
    threads[1].start()
    _wait_for_a_lock_wait()  # the redemption has locked y and waits for the mug's row
    go_on.set()
    for t in threads:
        t.join(30)
    assert outcome["job"] == 2, outcome
    assert isinstance(outcome["redeem"], Redemption), outcome


def _wait_for_a_lock_wait(seconds: float = 5) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        time.sleep(0.02)


def test_a_sponsor_without_a_budget_is_still_reported_month_by_month(shop, riders):
    give(riders[0], 10)
    assert isinstance(redeem(shop, riders[0], "city-map", NOW), Redemption)
    assert isinstance(redeem(shop, riders[0], "city-map", NOW + 30 * DAY), Redemption)
    spend = [s for s in rewards.sponsor_spend(shop, SHOP) if s["sponsor"] == "测试赞助丙"]
    assert [(s["period"], s["redemptions"], s["points"]) for s in spend] == [
        ("month:2026-03", 1, 1),
        ("month:2026-04", 1, 1),
    ]


def test_a_member_with_no_level_yet_stands_at_the_foot_of_the_ladder(shop, riders):
    give(riders[0], 10)  # points from an adjustment: no event has set a level
    assert db.session.get(Member, riders[0]).level is None
    assert isinstance(redeem(shop, riders[0], "bee-tea", NOW), Redemption)
    refused(redeem(shop, riders[0], "helmet", NOW), "not_eligible")
