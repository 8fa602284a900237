import datetime as dt

import pytest

from app.engine import EventDataError, validate_event_data

from .conftest import TZ


@pytest.fixture
def types(rules_dir):
    rules_dir.org("sx")
    return rules_dir.ruleset().event_types


def test_valid_data_is_converted(types):
    clean = validate_event_data(
        types["volunteer.hours"],
        {"hours": 3, "start": "2026-11-20T09:00:00", "end": "2026-11-20T12:00:00+08:00"},
        TZ,
    )
    assert clean["hours"] == 3
    assert clean["start"] == dt.datetime(2026, 11, 20, 9, tzinfo=TZ)
    assert clean["end"].utcoffset() == dt.timedelta(hours=8)


@pytest.mark.parametrize(
    ("type_", "data", "field", "message"),
    [
        ("duty.shift", {}, "hours", "is required"),
        ("duty.shift", {"hours": 25}, "hours", "must be at most 24"),
        ("duty.shift", {"hours": -1}, "hours", "must be at least 0"),
        ("duty.shift", {"hours": "3"}, "hours", "must be a number"),
        ("duty.shift", {"hours": True}, "hours", "must be a number"),
        ("duty.shift", {"hours": float("nan")}, "hours", "must be a finite number"),
        ("duty.shift", {"hours": 1, "post": "x" * 21}, "post", "must be at most 20 characters"),
        ("duty.shift", {"hours": 1, "extra": 1}, "extra", "unknown field for duty.shift"),
        ("duty.callout", {"hours": 1, "urgent": "yes"}, "urgent", "must be true or false"),
        ("task.report", {"severity": "huge"}, "severity", "must be one of low, high"),
        (
            "volunteer.hours",
            {"hours": 1, "start": "2026-11-20T09:00", "end": "2026-11-20T08:00"},
            "end",
            "must be after start",
        ),
        (
            "volunteer.hours",
            {"hours": 1, "start": "yesterday", "end": "2026-11-20T08:00"},
            "start",
            "must be an ISO 8601 date-time",
        ),
    ],
)
def test_data_that_does_not_fit_is_refused_per_field(types, type_, data, field, message):
    with pytest.raises(EventDataError) as exc:
        validate_event_data(types[type_], data, TZ)
    assert message in exc.value.errors[field]


def test_data_must_be_an_object(types):
    with pytest.raises(EventDataError) as exc:
        validate_event_data(types["duty.shift"], [1], TZ)
    assert exc.value.errors == {"data": "must be an object"}


def test_a_duration_cannot_exceed_its_span(types):
    with pytest.raises(EventDataError) as exc:
        validate_event_data(
            types["volunteer.hours"],
            {"hours": 8, "start": "2026-11-20T09:00:00", "end": "2026-11-20T09:30:00"},
            TZ,
        )
    assert exc.value.errors == {"hours": "must not exceed the time from start to end (0.50 h)"}
    ok = validate_event_data(
        types["volunteer.hours"],
        {"hours": 0.5, "start": "2026-11-20T09:00:00", "end": "2026-11-20T09:30:00"},
        TZ,
    )
    assert ok["hours"] == 0.5
