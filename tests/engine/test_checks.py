from app.engine import Severity

RULES = """
rules:
  - id: shift
    name: 值守
    on: duty.shift
    points: 5 * min(event.data.hours, 8)
    category: pioneer
    caps: [{per: day, points: 40}]
"""


def warnings(rules_dir) -> list[str]:
    return [str(d) for d in rules_dir.load().diagnostics if d.severity is Severity.WARNING]


def test_passing_examples_are_counted(rules_dir):
    rules_dir.org(
        "sx",
        RULES
        + """
examples:
  - name: three hours
    event: {type: duty.shift, occurred_at: 2026-11-20T09:00:00, data: {hours: 3}}
    expect: {points: 15, status: awarded, rules: {shift: 15}}
  - name: cap reached
    event: {type: duty.shift, occurred_at: 2026-11-20T20:00:00, data: {hours: 3}}
    counters: [{rule: shift, per: day, points: 35, count: 3}]
    expect: {points: 5}
""",
    )
    result = rules_dir.load()
    assert result.ruleset is not None
    assert result.examples == 2
    assert not result.warnings


def test_a_failing_example_is_an_error_with_the_reason(rules_dir):
    rules_dir.org(
        "sx",
        RULES
        + """
examples:
  - name: wrong
    event: {type: duty.shift, occurred_at: 2026-11-20T09:00:00, data: {hours: 3}}
    expect: {points: 20, rules: {shift: 20, other: 1}}
""",
    )
    result = rules_dir.load()
    assert result.ruleset is None
    (error,) = result.errors
    assert str(error).endswith(
        "sx.yaml:13:5: example 'wrong' failed: 15 points, expected 20; rule 'shift' gave 15 points, "
        "expected 20; rule 'other' did not match, expected 1 points "
        "[值守：5 × min(3 小时, 8) = 15 分（每日上限 40 分，剩余 25 分）]"
    )


def test_example_events_must_fit_their_type_and_tree(rules_dir):
    rules_dir.org(
        "sx.ty",
        RULES
        + """
examples:
  - name: bad data
    event: {type: duty.shift, occurred_at: 2026-11-20T09:00:00, data: {hours: 30}}
    expect: {points: 0}
  - name: elsewhere
    event: {type: duty.shift, org: sx.dt, occurred_at: 2026-11-20T09:00:00, data: {hours: 1}}
    expect: {points: 0}
  - name: unknown type
    event: {type: duty.nope, occurred_at: 2026-11-20T09:00:00}
    expect: {points: 0}
  - name: counters of another rule
    event: {type: duty.shift, occurred_at: 2026-11-20T09:00:00, data: {hours: 1}}
    counters: [{rule: nope, per: day, points: 1}]
    expect: {points: 5}
  - name: counters of a pool nobody uses
    event: {type: duty.shift, occurred_at: 2026-11-20T09:00:00, data: {hours: 1}}
    counters: [{pool: nope, per: day, points: 1}]
    expect: {points: 5}
""",
    )
    messages = [str(d) for d in rules_dir.load().errors]
    assert any(
        "'bad data': event data does not fit duty.shift: hours: must be at most 24" in m
        for m in messages
    )
    assert any("'elsewhere': event org 'sx.dt' is not sx.ty or below it" in m for m in messages)
    assert any("'unknown type': event type 'duty.nope' is not declared" in m for m in messages)
    assert any("counters name rule 'nope', which does not apply" in m for m in messages)
    assert any(
        "counters name pool 'nope', which no rule applying to duty.shift events" in m
        for m in messages
    )


def test_expect_rules_may_name_a_rule_of_one_tree_exactly(rules_dir):
    rules_dir.org("sx", RULES)
    rules_dir.org(
        "ind.delivery",
        """
rules:
  - {id: shift, name: 行业值守, on: duty.shift, points: 1, category: other}
examples:
  - name: both trees
    event: {type: duty.shift, org: ind.delivery, occurred_at: 2026-11-20T09:00:00, data: {hours: 3}}
    member: {industry: delivery}
    expect: {rules: {shift: 1, "ind.delivery:shift": 1}}
""",
    )
    rules_dir.org(
        "sx.ty",
        """
examples:
  - name: region and industry rules of the same id
    event: {type: duty.shift, occurred_at: 2026-11-20T09:00:00, data: {hours: 3}}
    member: {industry: delivery}
    expect: {points: 16, rules: {shift: 16, "sx:shift": 15, "ind.delivery:shift": 1}}
""",
    )
    result = rules_dir.load()
    assert result.ruleset is not None, [str(d) for d in result.errors]


def test_warns_about_rules_no_example_covers(rules_dir):
    rules_dir.org("sx", RULES)
    assert any(
        "sx.yaml:5:5: warning: rule 'shift' is not covered by any example" in w
        for w in warnings(rules_dir)
    )


def test_warns_about_hourly_points_without_a_daily_cap(rules_dir):
    rules_dir.org(
        "sx",
        """
        rules:
          - {id: h, name: H, on: duty.shift, points: 5 * event.data.hours, category: pioneer,
             caps: [{per: week, points: 200}]}
          - {id: ok, name: OK, on: duty.shift, points: 5 * event.data.hours, category: pioneer,
             caps: [{per: day, points: 40}]}
          - {id: flat, name: F, on: duty.shift, points: 5, category: pioneer}
        """,
    )
    hourly = [w for w in warnings(rules_dir) if "per hour of duty" in w]
    assert len(hourly) == 1 and "rule 'h'" in hourly[0]


def test_warns_about_rules_shadowed_by_an_earlier_stop(rules_dir):
    rules_dir.org("sx", RULES)
    rules_dir.org(
        "sx.ty",
        """
        rules:
          - {id: all, name: 全部, on: 'duty.*', points: 1, category: other, stop: true}
          - {id: night, name: 夜, on: duty.shift, when: context.hour > 22, points: 1,
             category: other, stop: true}
        """,
    )
    shadowed = [w for w in warnings(rules_dir) if "never applies" in w]
    assert any(
        "sx.yaml:5:5: warning: rule 'shift' never applies to events at sx.ty: rule 'all'" in w
        for w in shadowed
    )
    assert any("rule 'night' never applies" in w for w in shadowed)
    assert len(shadowed) == 2  # a conditional stop shadows nothing


def test_strictness_is_the_callers_choice_warnings_do_not_refuse(rules_dir):
    rules_dir.org("sx", RULES)
    result = rules_dir.load()
    assert result.ruleset is not None and result.warnings
