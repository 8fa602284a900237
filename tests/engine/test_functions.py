import pytest

from app.engine.functions import format_number, round_half_up


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.5, 3),
        (3.5, 4),
        (2.4999, 2),
        (0.1 * 3 * 5, 2),
        (1.5000000000000002, 2),
        (-2.5, -3),
        (7, 7),
    ],
)
def test_round_half_up(value, expected):
    assert round_half_up(value) == expected


@pytest.mark.parametrize(
    ("value", "text"), [(3.0, "3"), (2.5, "2.5"), (1 / 3, "0.33"), (True, "true"), (None, "null")]
)
def test_format_number(value, text):
    assert format_number(value) == text
