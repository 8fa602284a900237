import datetime as dt

import pytest

from app.engine import (
    EmergencyFacts,
    EvalStatus,
    EventFacts,
    MemberFacts,
    evaluate,
    needed_counters,
    render,
)

from .conftest import MEMBER, TZ, at, shift

PROVINCE = """
rules:
  - id: shift
    name: 值守
    name_en: Duty shift
    on: duty.shift
    points: 5 * min(event.data.hours, 8)
    category: pioneer
    caps: [{per: day, points: 40}]
  - id: callout
    name: 出勤
    on: duty.callout
    points: 10
    category: pioneer
"""


@pytest.fixture
def tree(rules_dir):
    rules_dir.org("sx", PROVINCE)
    return rules_dir


def test_points_and_explanation(tree):
    result = evaluate(tree.ruleset(), shift(hours=3), MEMBER)
    assert result.status is EvalStatus.AWARDED
    (award,) = result.awards
    assert (award.rule, award.rule_id, award.org, award.points) == ("sx:shift", "shift", "sx", 15)
    assert award.category == "pioneer"
    assert award.reason == "值守：5 × min(3 小时, 8) = 15 分（每日上限 40 分，剩余 25 分）"
    assert render(award.explanation, "en") == (
        "Duty shift: 5 × min(3 h, 8) = 15 points (daily cap 40: 25 left)"
    )
    assert result.version == tree.ruleset().version
    assert result.counters == {("sx:shift", "day:2026-11-20"): (15, 1)}


def test_a_points_cap_cuts_the_award_to_what_is_left_and_says_so(tree):
    counters = {("sx:shift", "day:2026-11-20"): (30, 2)}
    (award,) = evaluate(tree.ruleset(), shift(hours=4), MEMBER, counters).awards
    assert award.points == 10
    assert award.explanation.value == 20
    assert award.reason.endswith("（每日上限 40 分，已达上限；实得 10 分）")


def test_a_full_cap_awards_nothing_but_still_matches(tree):
    counters = {("sx:shift", "day:2026-11-20"): (40, 3)}
    result = evaluate(tree.ruleset(), shift(hours=4), MEMBER, counters)
    assert result.status is EvalStatus.AWARDED
    assert result.points == 0
    assert result.counters == {}


def test_count_caps_refuse_awards_past_the_count(rules_dir):
    rules_dir.org(
        "sx",
        """
        rules:
          - {id: report, name: 上报, on: task.report, points: 3, category: governance,
             caps: [{per: week, count: 2}]}
        """,
    )
    rs = rules_dir.ruleset()
    event = EventFacts("task.report", "sx", at(2026, 11, 20, 9), {"severity": "low"})
    counters = {("sx:report", "week:2026-W47"): (3, 1)}
    (award,) = evaluate(rs, event, MEMBER, counters).awards
    assert award.points == 3 and "每周限 2 次，还可 0 次" in award.reason
    counters = {("sx:report", "week:2026-W47"): (6, 2)}
    (award,) = evaluate(rs, event, MEMBER, counters).awards
    assert award.points == 0 and "每周限 2 次，已达上限" in award.reason


def test_a_pool_is_shared_by_rules_and_counted_within_one_evaluation(rules_dir):
    rules_dir.org(
        "sx",
        """
        rules:
          - {id: a, name: A, on: duty.shift, points: 30, category: other,
             caps: [{per: day, points: 50, pool: daily}]}
          - {id: b, name: B, on: duty.shift, points: 30, category: other,
             caps: [{per: day, points: 50, pool: daily}]}
        """,
    )
    result = evaluate(rules_dir.ruleset(), shift(), MEMBER)
    assert [a.points for a in result.awards] == [30, 20]
    assert result.counters == {("pool:sx:daily", "day:2026-11-20"): (50, 2)}


def test_inheritance_order_override_and_stable_counter_key(tree):
    tree.org(
        "sx.ty",
        """
        rules:
          - {id: shift, points: '6 * min(event.data.hours, 8)'}   # override: only points change
          - {id: city-bonus, name: 市级奖励, on: duty.shift, points: 1, category: other}
        """,
    )
    tree.org(
        "sx.ty.a",
        """
        rules:
          - {id: station, name: 驿站, on: duty.shift, points: 2, category: other}
        """,
    )
    rs = tree.ruleset()
    result = evaluate(rs, shift(org="sx.ty.a.unknown-station", hours=3), MEMBER)
    assert [a.rule for a in result.awards] == ["sx.ty.a:station", "sx:shift", "sx.ty:city-bonus"]
    overridden = result.awards[1]
    assert (overridden.points, overridden.org) == (18, "sx.ty")
    assert rs.chains["sx.ty"][0].caps[0].points == 40  # inherited cap
    assert ("sx:shift", "day:2026-11-20") in result.counters
    # a sibling city still gets the province's version
    (award,) = evaluate(rs, shift(org="sx.dt", hours=3), MEMBER).awards
    assert (award.points, award.org) == (15, "sx")


def test_disabled_switches_off_an_inherited_rule_below_that_org_only(tree):
    tree.org("sx.ty", "rules:\n  - {id: shift, disabled: true}\n")
    rs = tree.ruleset()
    assert evaluate(rs, shift(org="sx.ty.x"), MEMBER).status is EvalStatus.NO_MATCH
    assert evaluate(rs, shift(org="sx.dt"), MEMBER).points == 15


def test_stop_hides_the_event_from_later_rules(tree):
    tree.org(
        "sx.ty",
        """
        rules:
          - {id: night, name: 夜班, on: duty.shift, when: context.hour >= 22, points: 50,
             category: pioneer, stop: true}
        """,
    )
    rs = tree.ruleset()
    result = evaluate(rs, shift(org="sx.ty", when=at(2026, 11, 20, 23)), MEMBER)
    assert [a.rule_id for a in result.awards] == ["night"]
    assert result.stopped_by == "sx.ty:night"
    result = evaluate(rs, shift(org="sx.ty", when=at(2026, 11, 20, 9)), MEMBER)
    assert [a.rule_id for a in result.awards] == ["shift"]


def test_industry_committee_rules_apply_after_the_regional_chain(tree):
    tree.org(
        "ind.delivery",
        "rules:\n  - {id: bonus, name: 外卖奖励, on: duty.shift, points: 3, category: other}\n",
    )
    rs = tree.ruleset()
    rider = MemberFacts(industry="delivery")
    assert [a.rule for a in evaluate(rs, shift(org="sx.ty"), rider).awards] == [
        "sx:shift",
        "ind.delivery:bonus",
    ]
    courier = MemberFacts(industry="express")
    assert [a.rule for a in evaluate(rs, shift(org="sx.ty"), courier).awards] == ["sx:shift"]


def test_an_org_outside_every_tree_matches_nothing(tree):
    result = evaluate(tree.ruleset(), shift(org="bj.x"), MEMBER)
    assert result.status is EvalStatus.NO_MATCH and result.awards == ()


@pytest.mark.parametrize(
    ("day", "applies"),
    [
        ((2026, 11, 30, 23, 59), False),
        ((2026, 12, 1, 0, 0), True),
        ((2026, 12, 31, 23, 59), True),
        ((2027, 1, 1, 0, 1), False),
    ],
)
def test_active_windows_are_inclusive_local_dates(rules_dir, day, applies):
    rules_dir.org(
        "sx",
        """
        rules:
          - {id: winter, name: 冬季, on: duty.shift, points: 1, category: other,
             active: {from: 2026-12-01, until: 2026-12-31}}
        """,
    )
    result = evaluate(rules_dir.ruleset(), shift(when=at(*day)), MEMBER)
    assert (result.status is EvalStatus.AWARDED) is applies


def test_emergency_multiplier_and_emergency_only_rules(rules_dir):
    rules_dir.org(
        "sx",
        """
        rules:
          - {id: shift, name: 值守, on: duty.shift, points: 5 * event.data.hours,
             category: pioneer, emergency: {multiplier: 1.5}}
          - {id: flood, name: 防汛, on: duty.shift, points: 20, category: pioneer,
             when: "context.emergency_kind == 'flood'", emergency: {only: true}}
        """,
    )
    rs = rules_dir.ruleset()
    normal = evaluate(rs, shift(hours=3), MEMBER)
    assert [a.points for a in normal.awards] == [15]
    flood = evaluate(rs, shift(hours=3), MEMBER, emergency=EmergencyFacts("汾河防汛", "flood"))
    assert [a.points for a in flood.awards] == [23, 20]  # 22.5 rounds half up
    assert flood.awards[0].reason == "值守：5 × 3 小时 × 1.5 = 23 分（应急加倍：汾河防汛）"
    snow = evaluate(rs, shift(hours=3), MEMBER, emergency=EmergencyFacts("暴雪", "snow"))
    assert [a.points for a in snow.awards] == [23]


def test_verify_rules_wait_then_confirmation_credits_only_them(rules_dir):
    rules_dir.org(
        "sx",
        """
        rules:
          - {id: base, name: 基础, on: volunteer.hours, points: 1, category: volunteer}
          - {id: hours, name: 志愿, on: volunteer.hours, points: 4 * event.data.hours,
             category: volunteer, verify: true, caps: [{per: day, points: 32}]}
        """,
    )
    rs = rules_dir.ruleset()
    event = EventFacts(
        "volunteer.hours",
        "sx",
        at(2026, 11, 22, 9),
        {"hours": 3, "start": at(2026, 11, 22, 9), "end": at(2026, 11, 22, 12)},
    )
    first = evaluate(rs, event, MEMBER)
    assert first.status is EvalStatus.PENDING
    assert [(a.rule_id, a.points, a.pending) for a in first.awards] == [
        ("base", 1, False),
        ("hours", 0, True),
    ]
    assert first.awards[1].reason == "志愿：待组织确认（确认后约 12 分）"
    assert first.counters == {}
    confirmed = evaluate(rs, event, MEMBER, confirming=True)
    assert confirmed.status is EvalStatus.AWARDED
    assert [(a.rule_id, a.points) for a in confirmed.awards] == [("hours", 12)]
    assert confirmed.counters == {("sx:hours", "day:2026-11-22"): (12, 1)}


def test_days_are_local_an_event_at_2330_and_0030_fall_on_different_days(tree):
    rs = tree.ruleset()
    late = evaluate(rs, shift(when=at(2026, 11, 20, 23, 30)), MEMBER)
    early = evaluate(rs, shift(when=at(2026, 11, 21, 0, 30)), MEMBER)
    assert list(late.counters) == [("sx:shift", "day:2026-11-20")]
    assert list(early.counters) == [("sx:shift", "day:2026-11-21")]
    # the same moment given in UTC lands on the local day
    utc = dt.datetime(2026, 11, 20, 16, 30, tzinfo=dt.UTC)  # 00:30 on the 21st in Shanghai
    assert list(evaluate(rs, shift(when=utc), MEMBER).counters) == [("sx:shift", "day:2026-11-21")]


def test_weeks_start_on_monday(rules_dir):
    rules_dir.org(
        "sx",
        "rules:\n  - {id: w, name: W, on: duty.shift, points: 1, category: other,"
        " caps: [{per: week, count: 9}]}\n",
    )
    rs = rules_dir.ruleset()
    sunday = evaluate(rs, shift(when=at(2026, 11, 29, 23, 59)), MEMBER)
    monday = evaluate(rs, shift(when=at(2026, 11, 30, 0, 0)), MEMBER)
    assert list(sunday.counters) == [("sx:w", "week:2026-W48")]
    assert list(monday.counters) == [("sx:w", "week:2026-W49")]


def test_negative_results_count_as_zero(rules_dir):
    rules_dir.org(
        "sx",
        "rules:\n  - {id: n, name: N, on: duty.shift, points: 2 - event.data.hours, category: other}\n",
    )
    (award,) = evaluate(rules_dir.ruleset(), shift(hours=5), MEMBER).awards
    assert award.points == 0 and "结果为负，按 0 计" in award.reason


def test_a_failing_expression_skips_its_rule_and_is_reported(rules_dir):
    rules_dir.org(
        "sx",
        """
        rules:
          - {id: bad, name: 坏, on: duty.shift, points: 10 / (event.data.hours - 3), category: other}
          - {id: good, name: 好, on: duty.shift, points: 1, category: other}
        """,
    )
    result = evaluate(rules_dir.ruleset(), shift(hours=3), MEMBER)
    assert [a.rule_id for a in result.awards] == ["good"]
    assert result.errors == ("sx:bad: division by zero",)


def test_field_defaults_are_seen_by_expressions(rules_dir):
    rules_dir.org(
        "sx",
        "rules:\n  - {id: c, name: C, on: duty.callout,"
        " points: '8 if event.data.urgent else 6', category: pioneer}\n",
    )
    event = EventFacts("duty.callout", "sx", at(2026, 11, 20, 9), {"hours": 1})
    assert evaluate(rules_dir.ruleset(), event, MEMBER).points == 6


def test_needed_counters_names_what_evaluate_reads(tree):
    rs = tree.ruleset()
    assert needed_counters(rs, shift(), MEMBER) == {("sx:shift", "day:2026-11-20")}


def test_naive_times_are_refused(tree):
    event = EventFacts("duty.shift", "sx", dt.datetime(2026, 11, 20, 9), {"hours": 1})
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(tree.ruleset(), event, MEMBER)


def test_member_and_context_facts_reach_conditions(rules_dir):
    rules_dir.org(
        "sx",
        """
        rules:
          - id: party
            name: 党员
            on: duty.shift
            when: >-
              member.party_member and 'grid_member' in member.tags
              and any_within(member.orgs, 'sx.ty') and context.weekday == 5
              and member.level == 'expert' and event.partner == 'meituan'
            points: 7
            category: pioneer
        """,
    )
    rs = rules_dir.ruleset()
    member = MemberFacts(
        True, "delivery", "expert", "sx.ty.a", ("sx.ty.a",), frozenset({"grid_member"})
    )
    event = EventFacts("duty.shift", "sx.ty", at(2026, 11, 20, 9), {"hours": 1}, "meituan")
    assert evaluate(rs, event, member).points == 7  # 2026-11-20 is a Friday
    assert evaluate(rs, event, MemberFacts()).status is EvalStatus.NO_MATCH
    assert TZ.key == "Asia/Shanghai"


def test_an_override_of_emergency_or_active_keeps_the_inherited_sub_keys(rules_dir):
    rules_dir.org(
        "sx",
        """
        rules:
          - {id: flood, name: 防汛, on: duty.shift, points: 10, category: pioneer,
             emergency: {only: true, multiplier: 2}, active: {from: 2026-06-01, until: 2026-09-30}}
        """,
    )
    rules_dir.org(
        "sx.cz",
        "rules:\n  - {id: flood, emergency: {multiplier: 3}, active: {until: 2026-10-31}}\n",
    )
    rs = rules_dir.ruleset()
    (rule,) = rs.chains["sx.cz"]
    assert (rule.emergency_only, rule.multiplier) == (True, 3)
    assert (str(rule.active_from), str(rule.active_until)) == ("2026-06-01", "2026-10-31")
    calm = evaluate(rs, shift(org="sx.cz", when=at(2026, 10, 20, 9)), MEMBER)
    assert calm.status is EvalStatus.NO_MATCH  # still emergency-only
    flood = evaluate(
        rs, shift(org="sx.cz", when=at(2026, 10, 20, 9)), MEMBER, emergency=EmergencyFacts("汛", "")
    )
    assert flood.points == 30
    spring = evaluate(
        rs, shift(org="sx.cz", when=at(2026, 5, 20, 9)), MEMBER, emergency=EmergencyFacts("汛", "")
    )
    assert spring.status is EvalStatus.NO_MATCH  # the inherited from-date still holds


def test_pools_are_shared_within_a_tree_not_across_trees(rules_dir):
    rules_dir.org(
        "sx",
        "rules:\n  - {id: a, name: A, on: duty.shift, points: 30, category: other,"
        " caps: [{per: day, points: 40, pool: p}]}\n",
    )
    rules_dir.org(
        "sx.ty",
        "rules:\n  - {id: b, name: B, on: duty.shift, points: 30, category: other,"
        " caps: [{per: day, points: 40, pool: p}]}\n",
    )
    rules_dir.org(
        "ind.delivery",
        "rules:\n  - {id: c, name: C, on: duty.shift, points: 30, category: other,"
        " caps: [{per: day, points: 40, pool: p}]}\n",
    )
    result = evaluate(rules_dir.ruleset(), shift(org="sx.ty"), MemberFacts(industry="delivery"))
    assert [(a.rule, a.points) for a in result.awards] == [
        ("sx.ty:b", 30),
        ("sx:a", 10),  # same tree, same pool: cut
        ("ind.delivery:c", 30),  # another tree's pool of the same name
    ]


def test_add_counters_sums_increments_into_stored_counters():
    from app.engine import add_counters

    counters = {("a", "day:1"): (5, 1)}
    add_counters(counters, {("a", "day:1"): (3, 1), ("b", "ever"): (2, 1)})
    assert counters == {("a", "day:1"): (8, 2), ("b", "ever"): (2, 1)}
