"""Levels and badges as ingest decides them: in the event's transaction, once each, with their
bonuses in the ledger, through single events, batches, races and dry runs; and how the member
API shows them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    EARNING_KINDS,
    BadgeGrant,
    Event,
    LedgerEntry,
    LevelChange,
    Member,
    PartnerMember,
)
from app.services import rewards
from app.services.ingest import clear_emergency_cache
from app.services.rules import current_rules

from ..api.test_concurrency import _post, _race
from ..conftest import local
from ..factories import EmergencyFactory, OrganisationFactory
from ..partner_api import hazard, shift, volunteer

PIONEER_10 = "sx:pioneer-10"
# a street below the default home (sx.dt.pingcheng) for a test's own levels and badges: the
# province's and the city's still apply there, and no shipped file is replaced
QA = "sx.dt.pingcheng.qa"


# --- helpers -------------------------------------------------------------------------------


def callout(event_id: str, member: str = "r1", hours: float = 1, days_ago: float = 1) -> dict:
    """A commando call-out at 14:00 local: no time span, so several a day are not duplicates."""
    return {
        "id": event_id,
        "type": "pioneer.callout",
        "member": member,
        "occurred_at": local(days_ago, 14).isoformat(),
        "data": {"hours": hours},
    }


def emergency_task(event_id: str, member: str = "r1", days_ago: float = 1) -> dict:
    return {
        "id": event_id,
        "type": "emergency.task",
        "member": member,
        "occurred_at": local(days_ago, 15).isoformat(),
        "data": {"hours": 2, "task": "patrol"},
    }


def post_all(api, bodies: list[dict]) -> list[dict]:
    """Post each event on its own; every one must be stored."""
    out = []
    for body in bodies:
        response = api.post_event(body)
        assert response.status_code == 201, response.json
        out.append(response.json)
    return out


def member(ref: str = "r1") -> Member:
    db.session.expire_all()  # PostgreSQL ingest writes on a connection of its own
    return db.session.scalar(
        select(Member).join(PartnerMember, PartnerMember.member_id == Member.id)
        .where(PartnerMember.ref == ref)
    )  # fmt: skip


def stored_id(partner_event_id: str) -> int:
    return db.session.scalar(select(Event.id).where(Event.partner_event_id == partner_event_id))


def grants(badge: str | None = None) -> list[BadgeGrant]:
    db.session.expire_all()
    query = select(BadgeGrant).order_by(BadgeGrant.id)
    if badge is not None:
        query = query.where(BadgeGrant.badge == badge)
    return list(db.session.scalars(query))


def level_changes() -> list[LevelChange]:
    db.session.expire_all()
    return list(db.session.scalars(select(LevelChange).order_by(LevelChange.id)))


def bonuses() -> list[LedgerEntry]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.kind == "bonus").order_by(LedgerEntry.seq)
        )
    )


def badges_of(body: dict) -> list[tuple[str, int]]:
    return [(b["badge"], b["n"]) for b in body.get("badges", ())]


def assert_totals_match_the_ledger(m: Member) -> None:
    entries = list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.member_id == m.id)))
    assert m.balance == sum(e.points for e in entries)
    assert m.lifetime_points == sum(e.points for e in entries if e.kind in EARNING_KINDS)
    assert m.ledger_seq == len(entries)


def shifts(n: int, hours: float = 1, first: int = 1) -> list[dict]:
    """Shifts ``s<first>`` to ``s<first + n - 1>`` of r1, shift ``sN`` served ``N`` days back:
    one a day, and a grant's day (the triggering event's) is never the day it is posted."""
    return [shift(f"s{i}", hours=hours, days_ago=i) for i in range(first, first + n)]


@pytest.fixture
def qa(partner_api, rules_dir_extra):
    """Member q1 of the street QA; install the test's rules for QA with ``qa.add(QA, ...)``."""
    OrganisationFactory(code=QA, name="测试街道", kind="street")
    db.session.commit()
    response = partner_api.put_member("q1", primary_org=QA)
    assert response.status_code == 201, response.json
    return rules_dir_extra


# --- levels --------------------------------------------------------------------------------


def test_the_first_awarded_event_sets_the_first_level(partner_api, rider):
    food = {"id": "f1", "type": "governance.food_safety_report", "member": "r1",
            "occurred_at": local(1, 12).isoformat(), "data": {"severity": "high"}}  # fmt: skip
    no_match = partner_api.post_event(food).json
    assert no_match["status"] == "no_match" and "level" not in no_match
    assert member().level is None and level_changes() == []

    first, second = post_all(partner_api, [hazard("h1", severity="low"), hazard("h2")])
    assert first["level"] == "bee" and "level" not in second
    (change,) = level_changes()
    assert (change.from_level, change.to_level, change.bonus, change.lifetime_points) == (
        None, "bee", 0, 3)  # fmt: skip
    assert change.ladder_org == "sx" and change.event_id == stored_id("h1")
    assert member().level == "bee"
    assert bonuses() == []  # the first level has no bonus


def test_crossing_300_lifetime_points_lifts_bee_to_expert_with_its_bonus(partner_api, rider):
    # 8 hours a shift: 40 points, the day's cap; the eighth reaches 320
    bodies = post_all(partner_api, shifts(8, hours=8))
    assert [b.get("level") for b in bodies] == ["bee"] + [None] * 6 + ["expert"]
    assert bodies[-1]["points"] == 40 and bodies[-1]["balance"] == 320 + 20
    assert [(c.from_level, c.to_level, c.bonus, c.lifetime_points) for c in level_changes()] == [
        (None, "bee", 0, 40), ("bee", "expert", 20, 320)]  # fmt: skip
    assert level_changes()[-1].event_id == stored_id("s8")
    (bonus,) = bonuses()
    assert (bonus.points, bonus.category, bonus.ref) == (20, "other", "level:expert")
    assert bonus.event_id == stored_id("s8")
    assert bonus.reason == "升级为「能手」奖励 20 分"
    m = member()
    assert (m.level, m.balance, m.lifetime_points) == ("expert", 340, 340)
    assert_totals_match_the_ledger(m)


def test_spending_lowers_the_balance_but_never_the_level(partner_api, rider):
    post_all(partner_api, shifts(8, hours=8))
    rules = current_rules()
    drink = rewards.find_reward(rules, "sx.ty.xiaodian.pingyang.station-01:hot-drink")
    for _ in range(2):
        rewards.redeem(rules, member(), drink)
        db.session.commit()
    m = member()
    assert (m.level, m.balance, m.lifetime_points) == ("expert", 330, 340)
    assert_totals_match_the_ledger(m)

    after = partner_api.post_event(hazard("h1", severity="low")).json
    assert "level" not in after
    assert [c.to_level for c in level_changes()] == ["bee", "expert"]
    m = member()
    assert (m.level, m.balance, m.lifetime_points) == ("expert", 333, 343)
    assert_totals_match_the_ledger(m)


LADDER = """
levels:
  - {id: l0, name: 零级, min_points: 0}
  - {id: l1, name: 一级, min_points: 5, bonus: 5}
  - {id: l2, name: 二级, min_points: 12, bonus: 7}
"""


def test_a_jump_over_two_levels_records_each_with_its_bonus(partner_api, qa):
    qa.add(QA, LADDER)
    first, jump = post_all(
        partner_api, [hazard("h1", member="q1", severity="low"), hazard("h2", member="q1")]
    )
    assert first["level"] == "l0"
    assert jump["level"] == "l2" and jump["points"] == 10 and jump["balance"] == 3 + 10 + 5 + 7
    changes = level_changes()
    assert [(c.from_level, c.to_level, c.bonus) for c in changes] == [
        (None, "l0", 0), ("l0", "l1", 5), ("l1", "l2", 7)]  # fmt: skip
    assert {c.ladder_org for c in changes} == {QA}
    assert [c.event_id for c in changes[1:]] == [stored_id("h2")] * 2
    assert all(c.lifetime_points >= m for c, m in zip(changes, (0, 5, 12), strict=True))
    assert [(b.points, b.ref, b.event_id) for b in bonuses()] == [
        (5, "level:l1", stored_id("h2")), (7, "level:l2", stored_id("h2"))]  # fmt: skip
    m = member("q1")
    assert (m.level, m.balance, m.lifetime_points) == ("l2", 25, 25)
    assert_totals_match_the_ledger(m)
    # the top of the ladder: nothing further to go
    info = partner_api.get_member("q1").json["level_info"]
    assert (info["id"], info["next"]) == ("l2", None)


# --- badges: event_count (sx:pioneer-10) ---------------------------------------------------


def test_the_tenth_shift_grants_pioneer_10_once_with_its_bonus(partner_api, rider):
    bodies = post_all(partner_api, shifts(9))
    assert [b for b in bodies if "badges" in b] == []
    assert grants() == []

    (tenth,) = post_all(partner_api, shifts(1, first=10))
    day = local(10, 9).date().isoformat()
    reason = f"第 10 次党员先锋岗值守（{day}）"
    assert tenth["badges"] == [{"badge": PIONEER_10, "n": 1, "reason": reason, "bonus": 20}]
    assert tenth["balance"] == 10 * 5 + 20
    assert tenth["bonus"] == 20 and all("bonus" not in b for b in bodies)

    (grant,) = grants()
    assert (grant.badge, grant.n, grant.bonus, grant.reason) == (PIONEER_10, 1, 20, reason)
    assert grant.event_id == stored_id("s10") and grant.revoked_at is None
    assert grant.explanation["kind"] == "event_count"
    assert (grant.explanation["threshold"], grant.explanation["value"]) == (10, 10)
    (bonus,) = bonuses()
    assert (bonus.points, bonus.ref, bonus.event_id) == (20, f"badge:{PIONEER_10}#1",
                                                         stored_id("s10"))  # fmt: skip
    assert bonus.reason == "获得徽章「先锋十班」奖励 20 分"

    more = post_all(partner_api, shifts(9, first=11))
    assert [b for b in more if "badges" in b] == []
    (twentieth,) = post_all(partner_api, shifts(1, first=20))
    assert twentieth["badges"] == [{
        "badge": PIONEER_10, "n": 2, "bonus": 20,
        "reason": f"第 20 次党员先锋岗值守（{local(20, 9).date().isoformat()}）"}]  # fmt: skip
    assert [(g.n, g.event_id) for g in grants()] == [(1, stored_id("s10")), (2, stored_id("s20"))]
    assert [b.ref for b in bonuses()] == [f"badge:{PIONEER_10}#1", f"badge:{PIONEER_10}#2"]
    m = member()
    assert m.progress["n"]["pioneer.shift"] == 20 and m.progress["b"][PIONEER_10] == 2
    assert m.balance == 20 * 5 + 2 * 20
    assert_totals_match_the_ledger(m)


def test_only_awarded_shifts_count_towards_pioneer_10(partner_api, rider):
    post_all(partner_api, shifts(9))
    # the same shift reported again under another id overlaps it: a duplicate, not a shift
    dup = partner_api.post_event(shift("again", days_ago=9)).json
    assert dup["status"] == "duplicate" and "badges" not in dup
    assert grants() == [] and member().progress["n"]["pioneer.shift"] == 9
    (tenth,) = post_all(partner_api, shifts(1, first=10))
    assert badges_of(tenth) == [(PIONEER_10, 1)]


def test_pioneer_10_is_granted_at_most_ten_times(partner_api, rider):
    # two one-hour shifts a day (09:00 and 14:00) for 55 days: 110 shifts, in one batch
    events = []
    for day in range(1, 56):
        for hour in (9, 14):
            start = local(day, hour)
            events.append(shift(f"d{day}-{hour}", hours=1) | {
                "occurred_at": start.isoformat(),
                "data": {"hours": 1, "start": start.isoformat(),
                         "end": (start + dt.timedelta(hours=1)).isoformat()}})  # fmt: skip
    response = partner_api.post_batch(events)
    assert response.status_code == 200 and response.json["accepted"] == 110
    granted = [
        (i + 1, n) for i, r in enumerate(response.json["results"])
        for badge, n in badges_of(r["result"]) if badge == PIONEER_10
    ]  # fmt: skip
    assert granted == [(10 * n, n) for n in range(1, 11)]
    assert [g.n for g in grants(PIONEER_10)] == list(range(1, 11))
    assert len([b for b in bonuses() if b.ref.startswith(f"badge:{PIONEER_10}#")]) == 10
    m = member()
    assert m.progress["n"]["pioneer.shift"] == 110 and m.progress["b"][PIONEER_10] == 10
    assert_totals_match_the_ledger(m)


CALLOUTS = """
badges:
  - id: callouts
    name: 两次出勤
    condition: {kind: event_count, on: pioneer.callout, at_least: 2}
"""


def test_a_count_badge_due_on_another_events_type_names_its_own_type(partner_api, qa):
    post_all(partner_api, [callout("c1", "q1", days_ago=3), callout("c2", "q1", days_ago=2)])
    qa.add(QA, CALLOUTS)  # the organisation adds the badge: the next event settles it
    (report,) = post_all(partner_api, [hazard("h1", member="q1")])
    assert badges_of(report) == [(f"{QA}:callouts", 1)]
    assert report["badges"][0]["reason"].startswith("第 2 次党员突击队出勤（")


@pytest.mark.parametrize("before", [0, 8])
def test_a_batch_that_crosses_the_threshold_grants_once(partner_api, rider, before):
    post_all(partner_api, shifts(before))
    batch = shifts(12 - before, first=before + 1)
    response = partner_api.post_batch(batch)
    assert response.status_code == 200 and response.json["accepted"] == 12 - before
    results = [r["result"] for r in response.json["results"]]
    assert [(i + before + 1, badges_of(r)) for i, r in enumerate(results) if "badges" in r] == [
        (10, [(PIONEER_10, 1)])]  # fmt: skip
    # the same batch again is a replay: the same answers, nothing granted twice
    again = partner_api.post_batch(batch)
    assert [r["status"] for r in again.json["results"]] == [200] * len(batch)
    assert [r["result"] for r in again.json["results"]] == results
    assert [(g.n, g.event_id) for g in grants()] == [(1, stored_id("s10"))]
    assert [b.ref for b in bonuses()] == [f"badge:{PIONEER_10}#1"]
    assert_totals_match_the_ledger(member())


@pytest.mark.parametrize("group_max", [0, 64], ids=["alone", "group-commit"])
def test_the_tenth_and_twentieth_shift_under_contention_grant_exactly_once(
    app, partner_api, rider, monkeypatch, group_max
):
    monkeypatch.setitem(app.config, "INGEST_GROUP_MAX", group_max)
    app.extensions.pop("pioneer.group_commit", None)
    try:
        responses = _race(app, [_post(body, partner_api.headers) for body in shifts(20)])
    finally:
        app.extensions.pop("pioneer.group_commit", None)
    assert all(r.status_code == 201 for r in responses), [r.json for r in responses]
    granted = sorted(g for r in responses for g in badges_of(r.json))
    assert granted == [(PIONEER_10, 1), (PIONEER_10, 2)]
    assert sorted(r.json["level"] for r in responses if "level" in r.json) == ["bee"]
    assert [g.n for g in grants(PIONEER_10)] == [1, 2]
    assert [b.ref for b in bonuses()] == [f"badge:{PIONEER_10}#1", f"badge:{PIONEER_10}#2"]
    assert [c.to_level for c in level_changes()] == ["bee"]
    m = member()
    assert m.progress["n"]["pioneer.shift"] == 20 and m.progress["b"][PIONEER_10] == 2
    assert m.balance == 20 * 5 + 2 * 20
    assert_totals_match_the_ledger(m)


# --- badges: the other kinds ---------------------------------------------------------------


FIELD_SUM = """
    badges:
      - id: hours
        name: 值守出勤时长
        condition: {kind: field_sum, on: [pioneer.callout, pioneer.shift], field: hours,
                    at_least: %(both)s}
        bonus: 2
      - id: callout-hours
        name: 出勤时长
        condition: {kind: field_sum, on: pioneer.callout, field: hours, at_least: %(callout)s}
"""


def test_field_sum_adds_a_number_field_over_the_badges_types(partner_api, qa):
    qa.add(QA, FIELD_SUM % {"both": 2, "callout": 2})
    first, second = post_all(
        partner_api, [callout("c1", "q1", hours=1.5, days_ago=3), shift("s1", "q1", hours=0.5)]
    )
    assert "badges" not in first
    (grant,) = second["badges"]
    assert (grant["badge"], grant["n"], grant["bonus"]) == (f"{QA}:hours", 1, 2)
    # the reason names the threshold and the day of the event that reached it
    assert grant["reason"] == f"累计时长达到 2 小时（{local(1, 9).date()}）"
    assert member("q1").progress["sum"] == {"pioneer.callout|hours": 1.5,
                                            "pioneer.shift|hours": 0.5}  # fmt: skip
    assert [g.badge for g in grants()] == [f"{QA}:hours"]  # the shift is no call-out


def test_field_sum_of_one_type_keeps_decimal_hours_exact(partner_api, qa):
    qa.add(QA, FIELD_SUM % {"both": 100, "callout": 0.8})
    first, second = post_all(
        partner_api, [callout("c1", "q1", hours=0.7, days_ago=2), callout("c2", "q1", hours=0.1)]
    )
    # 0.7 + 0.1 is 0.7999999999999999 in floats: kept as 0.8, the threshold
    assert "badges" not in first and badges_of(second) == [(f"{QA}:callout-hours", 1)]
    assert member("q1").progress["sum"] == {"pioneer.callout|hours": 0.8}
    # one type: the reason names it, the field and its unit
    title = current_rules().event_types["pioneer.callout"].title
    assert second["badges"][0]["reason"] == f"累计{title}时长达到 0.8 小时（{local(1, 14).date()}）"


def test_field_sum_over_several_types_reaches_a_decimal_threshold(partner_api, qa):
    qa.add(QA, FIELD_SUM % {"both": 0.8, "callout": 100})
    post_all(partner_api, [callout("c1", "q1", hours=0.7, days_ago=2)])
    (second,) = post_all(partner_api, [shift("s1", "q1", hours=0.1)])
    assert badges_of(second) == [(f"{QA}:hours", 1)]  # 0.8 hours of the two types


def test_volunteer_hours_waiting_for_confirmation_count_towards_nothing(partner_api, rider):
    bodies = post_all(
        partner_api, [volunteer(f"v{d}", hours=20, days_ago=d, hour=2) for d in (1, 2, 3)]
    )
    assert {b["status"] for b in bodies} == {"pending"}
    assert all("badges" not in b and "level" not in b for b in bodies)  # 60 hours, unconfirmed
    m = member()
    assert m.progress == {} and m.level is None
    assert grants() == []


def test_steady_bee_needs_eight_consecutive_weeks(partner_api, rider):
    weekly = [hazard(f"w{k}", severity="low", days_ago=1 + 7 * k) for k in range(8)]
    gap, *rest = weekly[3], *weekly[:3], *weekly[4:]
    bodies = post_all(partner_api, rest)  # weeks 0-2 and 4-7: the longest run is four
    assert [b for b in bodies if "badges" in b] == []
    (filled,) = post_all(partner_api, [gap])
    day = local(22, 11).date().isoformat()
    assert filled["badges"] == [
        {"badge": "sx:steady-bee", "n": 1, "reason": f"连续 8 周有活动（{day}）", "bonus": 0}
    ]
    assert bonuses() == []  # steady-bee has no bonus: no ledger entry for it
    assert len(member().progress["w"]) == 8


STREAK = """
badges:
  - id: streak
    name: 连续三周
    condition: {kind: week_streak, at_least: 3}
    bonus: 3
"""


def test_week_streak_counts_weeks_not_events(partner_api, qa):
    qa.add(QA, STREAK)
    same_week = [hazard(f"h{i}", member="q1", severity="low", days_ago=1) for i in range(5)]
    assert [b for b in post_all(partner_api, same_week) if "badges" in b] == []
    (two,) = post_all(partner_api, [hazard("w1", member="q1", severity="low", days_ago=8)])
    assert "badges" not in two
    (three,) = post_all(partner_api, [hazard("w2", member="q1", severity="low", days_ago=15)])
    assert badges_of(three) == [(f"{QA}:streak", 1)]
    assert three["badges"][0]["reason"] == f"连续 3 周有活动（{local(15, 11).date()}）"


MONTHS = """
badges:
  - id: months
    name: 三个月
    condition: {kind: months_active, at_least: 3}
"""


def test_months_active_counts_each_month_once(partner_api, qa):
    qa.add(QA, MONTHS)
    # 31 days apart: never in the same month; two events of one day count one month
    bodies = post_all(partner_api, [
        hazard("a", member="q1", severity="low", days_ago=1),
        shift("b", member="q1", days_ago=1),
        hazard("c", member="q1", severity="low", days_ago=32),
    ])  # fmt: skip
    assert [b for b in bodies if "badges" in b] == []
    assert len(member("q1").progress["m"]) == 2
    (third,) = post_all(partner_api, [hazard("d", member="q1", severity="low", days_ago=63)])
    assert third["badges"] == [{"badge": f"{QA}:months", "n": 1, "bonus": 0,
                                "reason": f"累计 3 个月有活动（{local(63, 11).date()}）"}]  # fmt: skip


def test_emergency_badges_count_events_in_a_declared_emergency(partner_api, rider):
    # outside an emergency: an emergency task earns nothing, a shift is just a shift
    before = post_all(partner_api, [emergency_task("t0", days_ago=5), shift("s0", days_ago=5)])
    assert before[0]["status"] == "no_match"
    assert all("badges" not in b for b in before)

    EmergencyFactory(org_code="sx.dt", name="御河防汛", kind="flood")
    db.session.commit()
    clear_emergency_cache()
    (storm,) = post_all(partner_api, [shift("s1", days_ago=4)])
    # sx:storm-rider counts an emergency event of any type; sx.dt:dt-snow-guard only tasks
    assert storm["badges"] == [{"badge": "sx:storm-rider", "n": 1, "bonus": 10,
                                "reason": f"第 1 次应急任务（{local(4, 9).date()}）"}]  # fmt: skip
    tasks = post_all(partner_api, [emergency_task(f"t{d}", days_ago=d) for d in (3, 2, 1)])
    assert [badges_of(b) for b in tasks] == [[], [], [("sx.dt:dt-snow-guard", 1)]]
    assert tasks[-1]["badges"][0]["bonus"] == 15
    assert [g.badge for g in grants()] == ["sx:storm-rider", "sx.dt:dt-snow-guard"]
    assert [(b.points, b.ref) for b in bonuses()] == [
        (10, "badge:sx:storm-rider#1"), (15, "badge:sx.dt:dt-snow-guard#1")]  # fmt: skip
    assert member().progress["em"] == {"pioneer.shift": 1, "emergency.task": 3}
    assert_totals_match_the_ledger(member())


POINTS = """
badges:
  - id: points-39
    name: 三十九分
    condition: {kind: points_total, at_least: 39}
  - id: governance-20
    name: 治理二十分
    condition: {kind: points_total, category: governance, at_least: 20}
    bonus: 4
"""


def test_points_total_by_category_and_a_bonus_completing_a_lifetime_badge(partner_api, qa):
    qa.add(QA, POINTS)
    bodies = post_all(partner_api, [
        shift("s1", member="q1", hours=3),  # 15 pioneer points
        hazard("h1", member="q1"),  # 10 governance
    ])  # fmt: skip
    assert [b for b in bodies if "badges" in b] == []
    # 20 governance points: that badge, whose 4-point bonus lifts lifetime points 35 -> 39
    (second,) = post_all(partner_api, [hazard("h2", member="q1")])
    assert badges_of(second) == [(f"{QA}:governance-20", 1), (f"{QA}:points-39", 1)]
    assert second["badges"][0]["reason"] == f"累计积分达到 20（{local(1, 11).date()}）"
    m = member("q1")
    assert m.progress["cat"] == {"pioneer": 15, "governance": 20, "other": 4}
    assert m.lifetime_points == 39
    assert_totals_match_the_ledger(m)


# --- what the member API shows -------------------------------------------------------------


def test_a_new_member_is_shown_at_the_foot_of_the_ladder_with_no_badges(partner_api, rider):
    body = partner_api.get_member("r1").json
    assert body["level"] is None and body["badges"] == []
    assert body["level_info"]["id"] == "bee"
    assert body["level_info"]["next"] == {"id": "expert", "name": "能手", "name_en": "Expert",
                                          "min_points": 300, "points_to_go": 300}  # fmt: skip


def test_the_member_shows_level_info_and_badges_held(partner_api, rider):
    post_all(partner_api, shifts(20, hours=8))  # 800 points, expert's 20, two badges' 40
    body = partner_api.get_member("r1").json
    assert (body["level"], body["lifetime_points"], body["balance"]) == ("expert", 860, 860)
    info = body["level_info"]
    assert (info["id"], info["name"], info["min_points"]) == ("expert", "能手", 300)
    assert info["next"] == {"id": "pioneer", "name": "先锋", "name_en": "Pioneer",
                            "min_points": 1500, "points_to_go": 1500 - 860}  # fmt: skip
    (held,) = body["badges"]
    assert (held["badge"], held["name"], held["count"]) == (PIONEER_10, "先锋十班", 2)
    assert held["reason"] == f"第 20 次党员先锋岗值守（{local(20, 9).date()}）"  # the latest
    assert held["granted_at"]


# --- dry runs ------------------------------------------------------------------------------


def test_a_dry_run_sets_no_level(partner_api, rider):
    body = partner_api.post_event(hazard("h1"), dry_run="true").json
    assert body["dry_run"] is True and "level" not in body
    assert member().level is None and level_changes() == []


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_dry_run_grants_nothing(partner_api, rider, batch):
    post_all(partner_api, shifts(9))
    tenth = shifts(3, first=10)
    if batch:
        response = partner_api.post_batch(tenth, dry_run="true")
        results = [r["result"] for r in response.json["results"]]
    else:
        results = [partner_api.post_event(tenth[0], dry_run="true").json]
    assert all(r["dry_run"] is True and "badges" not in r for r in results)
    assert grants() == [] and bonuses() == []
    m = member()
    assert m.progress["n"]["pioneer.shift"] == 9 and "b" not in m.progress
    (real,) = post_all(partner_api, tenth[:1])  # the dry run took nothing away either
    assert badges_of(real) == [(PIONEER_10, 1)]


def test_every_grant_and_level_change_points_at_a_stored_event(partner_api, rider):
    post_all(partner_api, shifts(10, hours=8))
    stored = set(db.session.scalars(select(Event.id)))
    linked = [g.event_id for g in grants()] + [c.event_id for c in level_changes()]
    linked += [b.event_id for b in bonuses()]
    assert len(linked) == 5 and set(linked) <= stored  # pioneer-10, bee, expert; 2 bonuses
    assert db.session.scalar(select(func.count(BadgeGrant.id))) == 1
