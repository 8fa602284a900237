"""Fuzz the loader: whatever a rules file holds, loading ends in a result, never an exception."""

import os

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import load_ruleset

from .conftest import RulesDir

KEYS = [
    "org", "name", "rules", "id", "on", "when", "points", "category", "caps", "per", "count",
    "pool", "active", "from", "until", "verify", "emergency", "multiplier", "only", "stop",
    "disabled", "levels", "min_points", "badges", "condition", "kind", "at_least", "rewards",
    "cost", "eligibility", "examples", "event", "type", "occurred_at", "data", "expect", "hours",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "sx",
            "duty.shift",
            "duty.*",
            "pioneer",
            "day",
            "5 * min(event.data.hours, 8)",
            "event.__class__",
            "2026-11-30",
            "(" * 300,
            "member.tags",
        ]
    ),
    st.text(max_size=30),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=40,
)

SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),  # more by hand: FUZZ_EXAMPLES=3000
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _load(tmp_path_factory, text: str):
    rules_dir = RulesDir(tmp_path_factory.mktemp("fuzz"))
    (rules_dir.path / "sx.yaml").write_text(text, encoding="utf-8")
    result = load_ruleset(rules_dir.path)
    for d in result.diagnostics:
        assert d.line >= 1 and d.col >= 1 and d.message
    return result


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_loads_to_a_result(tmp_path_factory, text):
    _load(tmp_path_factory, text)


@SETTINGS
@given(TREES)
def test_any_yaml_structure_loads_to_a_result(tmp_path_factory, tree):
    _load(tmp_path_factory, yaml.safe_dump(tree, allow_unicode=True))


@SETTINGS
@given(st.lists(st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=8), max_size=4))
def test_any_rule_list_loads_to_a_result(tmp_path_factory, rules):
    text = yaml.safe_dump({"org": "sx", "name": "省", "rules": rules}, allow_unicode=True)
    result = _load(tmp_path_factory, text)
    assert result.ruleset is not None or result.errors
