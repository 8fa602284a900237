"""Property-based tests: caps are never exceeded, evaluation is deterministic."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import EventFacts, MemberFacts, Per, evaluate
from app.engine.periods import period_key

from .conftest import TZ, RulesDir

RULES = """
rules:
  - {id: shift, name: 值守, on: duty.shift, points: '5 * min(event.data.hours, 8)',
     category: pioneer, caps: [{per: day, points: 40}, {per: week, points: 150}]}
  - {id: count, name: 次数, on: 'duty.*', points: 3, category: other,
     caps: [{per: day, count: 2}, {per: month, points: 20, pool: shared}]}
  - {id: pooled, name: 共享, on: duty.callout, points: '4 * event.data.hours',
     category: other, caps: [{per: day, points: 30}, {per: month, points: 20, pool: shared}]}
"""

events = st.lists(
    st.tuples(
        st.sampled_from(["duty.shift", "duty.callout"]),
        st.floats(min_value=0, max_value=24, allow_nan=False),
        st.integers(min_value=0, max_value=60 * 24 * 20),  # minutes after the start
    ),
    min_size=1,
    max_size=40,
)


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory):
    rules_dir = RulesDir(tmp_path_factory.mktemp("props"))
    rules_dir.org("sx", RULES)
    return rules_dir.ruleset()


def replay(ruleset, stream):
    """Feed a stream through evaluate, storing counters as a service would."""
    counters: dict = {}
    start = dt.datetime(2026, 11, 1, tzinfo=TZ)
    results = []
    for type_, hours, minutes in stream:
        when = start + dt.timedelta(minutes=minutes)
        event = EventFacts(type_, "sx.ty", when, {"hours": hours})
        result = evaluate(ruleset, event, MemberFacts(), counters)
        for key, (points, count) in result.counters.items():
            old = counters.get(key, (0, 0))
            counters[key] = (old[0] + points, old[1] + count)
        results.append((when, result))
    return results


# Which counters each rule's awards fill, and each counter's limit:
# (name, period kind, what is counted, limit)
FILLS = {
    "shift": [("shift", Per.DAY, "points", 40), ("shift", Per.WEEK, "points", 150)],
    "count": [("count", Per.DAY, "count", 2), ("shared", Per.MONTH, "points", 20)],
    "pooled": [("pooled", Per.DAY, "points", 30), ("shared", Per.MONTH, "points", 20)],
}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events)
def test_caps_are_never_exceeded(ruleset, stream):
    totals: dict = {}
    for when, result in replay(ruleset, stream):
        local = when.astimezone(TZ)
        for award in result.awards:
            assert award.points >= 0
            for name, per, what, limit in FILLS[award.rule_id]:
                key = (name, period_key(per, local), what)
                add = (1 if award.points else 0) if what == "count" else award.points
                totals[key] = totals.get(key, 0) + add
                assert totals[key] <= limit, (key, totals[key])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events)
def test_evaluation_is_deterministic(ruleset, stream):
    first = [(w, r.awards, r.counters, r.status) for w, r in replay(ruleset, stream)]
    second = [(w, r.awards, r.counters, r.status) for w, r in replay(ruleset, stream)]
    assert first == second
