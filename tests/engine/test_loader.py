import pytest

from app.engine import RulesError, load_rules

RULE = """
rules:
  - id: shift
    name: 值守
    on: duty.shift
    points: 5 * min(event.data.hours, 8)
    category: pioneer
    caps: [{per: day, points: 40}]
"""


def test_a_valid_directory_loads_with_a_version(rules_dir):
    rules_dir.org("sx", RULE)
    rs = rules_dir.ruleset()
    assert len(rs.version) == 12
    assert [r.key for r in rs.chains["sx"]] == ["sx:shift"]
    assert set(rs.event_types) == {"duty.shift", "duty.callout", "task.report", "volunteer.hours"}


def test_version_changes_with_any_file(rules_dir):
    rules_dir.org("sx", RULE)
    before = rules_dir.ruleset().version
    rules_dir.org("sx", RULE + "\n# a comment\n")
    assert rules_dir.ruleset().version != before


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # unknown keys, with a suggestion
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, point: 1, category: other}\n",
            "sx.yaml:4:38: unknown key 'point' in rules[1]; did you mean 'points'?",
        ),
        ("rule: []\n", "sx.yaml:3:1: unknown key 'rule' in ; did you mean 'rules'?"),
        # wrong types
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: [1], category: other}\n",
            "rules[1].points must be a whole number or an expression, not a list",
        ),
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: 1, category: other, verify: 1}\n",
            "rules[1].verify must be true or false, not a whole number",
        ),
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: -1, category: other}\n",
            "rules[1].points must be at least 0; got -1",
        ),
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: 1, category: fun}\n",
            "rules[1].category must be one of pioneer, governance, volunteer, other; got 'fun'",
        ),
        (
            "rules:\n  - {id: A B, name: A, on: duty.shift, points: 1, category: other}\n",
            "rules[1].id 'A B' is not valid",
        ),
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: 1, category: other,\n"
            "     caps: [{per: daily, points: 5}]}\n",
            "did you mean 'day'?",
        ),
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: 1, category: other,\n"
            "     caps: [{per: day, points: 5, count: 2}]}\n",
            "rules[1].caps[1] needs exactly one of points, count",
        ),
        # bad expressions, with the column of the problem
        (
            "rules:\n  - id: a\n    name: A\n    on: duty.shift\n    points: 5 * mim(1, 2)\n"
            "    category: other\n",
            "sx.yaml:7:17: points: unknown function 'mim' (did you mean 'min'?)",
        ),
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, when: 'event.data.hours >', points: 1,"
            " category: other}\n",
            "when: syntax error",
        ),
        # fields the event type does not declare
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: event.data.minutes, category: other}\n",
            "points reads event.data.minutes, which duty.shift does not declare",
        ),
        (
            "rules:\n  - {id: a, name: A, on: 'duty.*', when: event.data.urgent, points: 1,"
            " category: other}\n",
            "when reads event.data.urgent, which duty.shift does not declare",
        ),
        # duplicate ids, duplicate YAML keys
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: 1, category: other}\n"
            "  - {id: a, name: B, on: duty.shift, points: 2, category: other}\n",
            "sx.yaml:5:10: duplicate rule id 'a' (first at line 4)",
        ),
        ("rules: []\nrules: []\n", "sx.yaml:4:1: duplicate key 'rules' (first defined at line 3)"),
        # on matching nothing
        (
            "rules:\n  - {id: a, name: A, on: duty.shif, points: 1, category: other}\n",
            "on: 'duty.shif' matches no declared event type (did you mean 'duty.shift'?)",
        ),
        (
            "rules:\n  - {id: a, name: A, on: 'nothing.*', points: 1, category: other}\n",
            "on: 'nothing.*' matches no declared event type",
        ),
        # inverted windows
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: 1, category: other,\n"
            "     active: {from: 2026-12-01, until: 2026-11-01}}\n",
            "active window is inverted: from 2026-12-01 is after until 2026-11-01",
        ),
        (
            "rewards:\n  - {id: r, name: R, cost: 5, valid: {from: 2026-12-01, until: 2026-11-01}}\n",
            "valid window is inverted",
        ),
        # missing keys
        (
            "rules:\n  - {id: a, name: A, points: 1, category: other}\n",
            "rule 'a' is missing 'on' (only a rule that overrides an inherited id may leave keys out)",
        ),
        (
            "rules:\n  - {id: a, disabled: true}\n",
            "rule 'a' is disabled, but no organisation above sx has a rule with that id",
        ),
        (
            "rules:\n  - {id: a, name: A, on: duty.shift, points: 1, category: other,\n"
            "     caps: [{per: day, points: 5}, {per: day, points: 9}]}\n",
            "two day points caps on the same counter",
        ),
        # levels, badges, rewards
        (
            "levels:\n  - {id: a, name: A, min_points: 10}\n",
            "the first level must start at min_points: 0",
        ),
        (
            "levels:\n  - {id: a, name: A, min_points: 0}\n  - {id: b, name: B, min_points: 0}\n",
            "level 'b' needs more points than the level before it (0)",
        ),
        (
            "badges:\n  - {id: b, name: B, condition: {kind: event_cnt, on: duty.shift, at_least: 1}}\n",
            "unknown badge kind 'event_cnt' (did you mean 'event_count'?)",
        ),
        (
            "badges:\n  - {id: b, name: B, condition: {kind: event_count, at_least: 1}}\n",
            "badge kind event_count needs 'on'",
        ),
        (
            "badges:\n  - {id: b, name: B, condition: {kind: months_active, at_least: 2, top: 3}}\n",
            "badge kind months_active does not take 'top'",
        ),
        (
            "badges:\n  - {id: b, name: B, condition: {kind: field_sum, on: task.report,"
            " field: severity, at_least: 3}}\n",
            "badge field 'severity' is not a number field of task.report",
        ),
        (
            "rewards:\n  - {id: r, name: R, cost: 5, eligibility: {min_level: gold}}\n",
            "reward 'r': min_level 'gold' is not a level of the ladder in force for sx",
        ),
        (
            "rewards:\n  - {id: r, name: R, cost: 5, eligibility: {badge: nope}}\n",
            "reward 'r': badge 'nope' is not defined at sx or above",
        ),
        (
            "rewards:\n  - {id: r, name: R, cost: 5, sponsor: {name: S, budget: {per: month, yuan: 9}}}\n",
            "a budget in yuan needs yuan_per_item",
        ),
        ("expiry: {policy: after_months}\n", "expiry policy after_months needs 'months'"),
    ],
)
def test_errors_are_reported_with_file_line_and_message(rules_dir, body, expected):
    rules_dir.org("sx", body)
    result = rules_dir.load()
    assert result.ruleset is None
    messages = [str(d) for d in result.errors]
    assert any(expected in m for m in messages), messages
    assert all(m.startswith(str(rules_dir.path)) for m in messages)


def test_org_must_match_the_file_name(rules_dir):
    rules_dir.write("sx.ty.yaml", "org: sx.dt\nname: 大同\n")
    assert any(
        "sx.ty.yaml:1:6: org 'sx.dt' does not match the file name 'sx.ty.yaml' (expected org: sx.ty)"
        in m
        for m in rules_dir.messages()
    )


def test_an_organisation_with_two_files_is_refused(rules_dir):
    rules_dir.org("sx")
    rules_dir.write("sx.yml", "org: sx\nname: again\n")
    assert any("also has the file" in m for m in rules_dir.messages())


def test_missing_event_types_file_is_an_error(rules_dir):
    (rules_dir.path / "event-types.yaml").unlink()
    rules_dir.org("sx")
    assert any(
        "event-types.yaml:1:1: the event types file is missing" in m for m in rules_dir.messages()
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("x: {type: string, min: 1}", "field x: 'min' does not apply to type string"),
        ("x: {type: enum}", "field x: an enum needs 'values'"),
        ("x: {type: number, min: 5, max: 1}", "field x: max 1 is below min 5"),
        ("x: {type: integer, default: 'a'}", "field x: default must be a whole number"),
        ("x: {type: numbr}", "did you mean 'number'?"),
        ("X: {type: number}", "key 'X' is not valid"),
    ],
)
def test_event_type_field_errors(rules_dir, fields, expected):
    rules_dir.write(
        "event-types.yaml", f"event_types:\n  a.b:\n    name: A\n    fields:\n      {fields}\n"
    )
    rules_dir.org("sx")
    messages = rules_dir.messages()
    assert any(expected in m for m in messages), messages


def test_span_types_need_start_and_end(rules_dir):
    rules_dir.write("event-types.yaml", "event_types:\n  a.b: {name: A, span: true}\n")
    assert any("must declare a required datetime field 'start'" in m for m in rules_dir.messages())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("org: sx\nname: [unclosed\n", "YAML syntax error"),
        ("- just\n- a list\n", "a rules file must be a mapping"),
        (b"org: sx\nname: \xff\xfe\n", "file is not valid UTF-8"),
    ],
)
def test_unreadable_files_are_errors(rules_dir, text, expected):
    target = rules_dir.path / "sx.yaml"
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text)
    assert any(expected in m for m in rules_dir.messages())


def test_loading_is_all_or_nothing(rules_dir):
    rules_dir.org("sx", RULE)
    rules_dir.org(
        "sx.ty", "rules:\n  - {id: x, name: X, on: duty.shift, points: nope, category: other}\n"
    )
    result = rules_dir.load()
    assert result.ruleset is None
    with pytest.raises(RulesError) as exc:
        load_rules(rules_dir.path)
    assert "unknown name 'nope'" in str(exc.value)


def test_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(RulesError, match="rules directory not found"):
        load_rules(tmp_path / "nope")


def test_an_unknown_timezone_is_an_error(rules_dir):
    with pytest.raises(RulesError, match="unknown time zone 'Mars/Base'"):
        load_rules(rules_dir.path, timezone="Mars/Base")


def test_everything_is_parsed_into_the_model(rules_dir):
    rules_dir.org(
        "sx",
        RULE
        + """
levels:
  - {id: bee, name: 蜜蜂, min_points: 0}
  - {id: expert, name: 能手, min_points: 300, bonus: 20}
badges:
  - id: ten
    name: 十次
    condition: {kind: event_count, on: 'duty.*', at_least: 10}
    repeat: {every: 10, max: 3}
    bonus: 5
rewards:
  - id: lunch
    name: 午餐
    cost: 80
    stock: {total: 100, per_period: {per: month, count: 20}}
    limit: {per: week, count: 1}
    eligibility: {min_level: expert, party_member: true, subtree: true, badge: ten}
    valid: {from: 2026-01-01, until: 2026-12-31}
    sponsor: {name: 工会, budget: {per: month, yuan: 1000}, yuan_per_item: 15}
    pickup_hours: 72
expiry: {policy: after_months, months: 24, warn_days: 30}
""",
    )
    rs = rules_dir.ruleset()
    f = rs.files["sx"]
    assert [lv.id for lv in f.levels] == ["bee", "expert"]
    assert f.badges[0].params["types"] == {"duty.shift", "duty.callout"}
    assert (f.badges[0].repeat_every, f.badges[0].repeat_max, f.badges[0].bonus) == (10, 3, 5)
    r = f.rewards[0]
    assert (r.cost, r.stock_total, r.stock_per_count, r.limit_count) == (80, 100, 20, 1)
    assert (r.min_level, r.party_member_only, r.subtree, r.badge) == (
        "expert",
        True,
        "sx",
        "ten",
    )
    assert (r.sponsor, r.budget_yuan, r.yuan_per_item, r.pickup_hours) == ("工会", 1000, 15, 72)
    assert rs.expiry_for("sx.ty.any").months == 24
    assert rs.levels_for("sx.ty.any")[1].bonus == 20


def test_reward_subtree_may_name_another_organisation(rules_dir):
    rules_dir.org("sx")
    rules_dir.org(
        "sx.ty.service-centre",
        "rewards:\n  - {id: r, name: R, cost: 5, eligibility: {subtree: sx.ty}}\n"
        "  - {id: s, name: S, cost: 5, eligibility: {subtree: true}}\n",
    )
    rewards = rules_dir.ruleset().rewards_at("sx.ty.service-centre")
    assert [r.subtree for r in rewards] == ["sx.ty", "sx.ty.service-centre"]


def test_reward_for_an_industry_without_a_committee_is_a_warning(rules_dir):
    rules_dir.org(
        "sx", "rewards:\n  - {id: r, name: R, cost: 5, eligibility: {industry: delivry}}\n"
    )
    result = rules_dir.load()
    assert result.ruleset is not None
    assert any(
        "no industry committee ind.delivry has a rules file" in str(w) for w in result.warnings
    )
