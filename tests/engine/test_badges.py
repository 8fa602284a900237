"""Badge kinds: how many grants a measured value is worth, the longest run of weeks, and what
each kind measures on a member's progress (the counters services.achievements keeps)."""

from __future__ import annotations

import pytest

from app.engine.badges import BADGE_KINDS, grants_due, longest_run


def measure(kind: str, params: dict, progress: dict, lifetime: int = 0) -> float:
    return BADGE_KINDS[kind].measure(params, progress, lifetime)


# --- grants_due ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at_least", "value", "due"),
    [(10, 0, 0), (10, 9, 0), (10, 9.999, 0), (10, 10, 1), (10, 11, 1), (10, 10_000, 1),
     (0, 0, 1), (1, 1, 1)],
)  # fmt: skip
def test_a_one_off_badge_is_due_once_from_its_threshold_on(at_least, value, due):
    assert grants_due(at_least, None, None, value) == due


@pytest.mark.parametrize(
    ("value", "due"),
    [(9, 0), (10, 1), (19, 1), (20, 2), (29, 2), (30, 3), (99, 9), (100, 10), (110, 10),
     (10_000, 10)],
)  # fmt: skip
def test_a_repeatable_badge_is_due_again_every_step_up_to_its_maximum(value, due):
    # sx:pioneer-10: at_least 10, repeat every 10, at most 10 times
    assert grants_due(10, 10, 10, value) == due


@pytest.mark.parametrize(("value", "due"), [(9, 0), (10, 1), (100, 10), (10_000, 1000)])
def test_a_repeatable_badge_without_a_maximum_has_no_ceiling(value, due):
    assert grants_due(10, 10, None, value) == due


@pytest.mark.parametrize(
    ("at_least", "every", "most", "value", "due"),
    [
        (50, None, None, 49.9, 0),
        (50, None, None, 50.0, 1),
        (2.5, 2.5, None, 4.9, 1),
        (2.5, 2.5, None, 5.0, 2),
        (2.5, 2.5, None, 7.5, 3),
        # (0.6 - 0.3) / 0.1 is 2.9999999999999996 in floats: still three steps past 0.3
        (0.3, 0.1, None, 0.6, 4),
        (0.3, 0.1, None, 0.5999, 3),
        (1.5, 0.5, 3, 100.0, 3),
    ],
)
def test_float_thresholds_and_steps_count_exactly(at_least, every, most, value, due):
    assert grants_due(at_least, every, most, value) == due


# --- longest_run ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numbers", "run"),
    [
        ([], 0),
        ([7], 1),
        ([1, 2, 3], 3),
        ([1, 3, 5], 1),
        ([1, 2, 4, 5, 6], 3),
        ([1, 2, 3, 7, 8], 3),
        ([2900, 2901, 2903, 2904, 2905, 2906], 4),
        ((4, 5), 2),
    ],
)
def test_longest_run_counts_the_longest_stretch_of_consecutive_numbers(numbers, run):
    assert longest_run(numbers) == run


# --- what each kind measures ---------------------------------------------------------------

PROGRESS = {
    "n": {"pioneer.shift": 12, "pioneer.callout": 3, "volunteer.hours": 40},
    "sum": {"pioneer.shift|hours": 30.5, "pioneer.callout|hours": 4.25, "volunteer.hours|hours": 9},
    "m": [24317, 24318, 24320],
    "w": [2900, 2901, 2902, 2905, 2906],
    "em": {"emergency.task": 2, "pioneer.shift": 1},
    "cat": {"pioneer": 180, "governance": 40, "other": 20},
}
LIFETIME = 240


@pytest.mark.parametrize(
    ("types", "value"),
    [
        ({"pioneer.shift"}, 12),
        ({"pioneer.shift", "pioneer.callout"}, 15),
        ({"pioneer.shift", "pioneer.callout", "volunteer.hours"}, 55),
        ({"governance.hazard_report"}, 0),
    ],
)
def test_event_count_adds_the_events_of_the_badges_types_only(types, value):
    params = {"types": frozenset(types), "at_least": 10}
    assert measure("event_count", params, PROGRESS) == value


@pytest.mark.parametrize(
    ("types", "field", "value"),
    [
        ({"pioneer.shift"}, "hours", 30.5),
        ({"pioneer.shift", "pioneer.callout"}, "hours", 34.75),
        ({"volunteer.hours"}, "hours", 9),
        ({"pioneer.fleet_run"}, "km", 0),
        ({"pioneer.shift"}, "km", 0),
    ],
)
def test_field_sum_adds_the_field_over_the_badges_types_only(types, field, value):
    params = {"types": frozenset(types), "field": field, "at_least": 1}
    assert measure("field_sum", params, PROGRESS) == value


def test_months_active_counts_distinct_months():
    assert measure("months_active", {"at_least": 1}, PROGRESS) == 3


@pytest.mark.parametrize(
    ("weeks", "value"),
    [
        ([2900, 2901, 2902, 2905, 2906], 3),  # a gap of two weeks breaks the streak
        ([2900, 2902, 2904, 2906], 1),  # every other week is never a streak
        ([2900, 2901, 2902, 2903, 2904, 2905, 2906, 2907], 8),
        ([2907], 1),
    ],
)
def test_week_streak_is_the_longest_run_of_consecutive_weeks(weeks, value):
    assert measure("week_streak", {"at_least": 1}, {"w": weeks}) == value


@pytest.mark.parametrize(
    ("params", "value"),
    [
        ({"at_least": 1}, 3),  # any type
        ({"at_least": 1, "types": frozenset({"emergency.task"})}, 2),
        ({"at_least": 1, "types": frozenset({"emergency.task", "pioneer.shift"})}, 3),
        ({"at_least": 1, "types": frozenset({"pioneer.callout"})}, 0),
    ],
)
def test_emergency_counts_emergency_events_of_any_type_or_of_the_badges_types(params, value):
    assert measure("emergency", params, PROGRESS) == value


@pytest.mark.parametrize(
    ("params", "value"),
    [
        ({"at_least": 1}, LIFETIME),
        ({"at_least": 1, "category": "pioneer"}, 180),
        ({"at_least": 1, "category": "other"}, 20),
        ({"at_least": 1, "category": "volunteer"}, 0),
    ],
)
def test_points_total_is_lifetime_points_or_the_points_of_one_category(params, value):
    assert measure("points_total", params, PROGRESS, LIFETIME) == value


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("event_count", {"types": frozenset({"pioneer.shift"}), "at_least": 1}),
        ("field_sum", {"types": frozenset({"pioneer.shift"}), "field": "hours", "at_least": 1}),
        ("months_active", {"at_least": 1}),
        ("week_streak", {"at_least": 1}),
        ("emergency", {"at_least": 1}),
        ("emergency", {"at_least": 1, "types": frozenset({"emergency.task"})}),
        ("points_total", {"at_least": 1}),
        ("points_total", {"at_least": 1, "category": "pioneer"}),
    ],
)
def test_a_member_without_progress_measures_zero_on_every_kind(kind, params):
    assert measure(kind, params, {}, 0) == 0


def test_only_rank_badges_are_left_to_the_period_close():
    # settle() skips kinds without a measure: a kind added without one would never be granted
    assert {name for name, kind in BADGE_KINDS.items() if kind.measure is None} == {"rank"}


def test_field_sum_over_several_types_reaches_a_decimal_threshold():
    progress = {"sum": {"pioneer.callout|hours": 0.7, "pioneer.shift|hours": 0.1}}
    params = {"types": frozenset({"pioneer.callout", "pioneer.shift"}), "field": "hours",
              "at_least": 0.8}  # fmt: skip
    assert grants_due(0.8, None, None, measure("field_sum", params, progress)) == 1
