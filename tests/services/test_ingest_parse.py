"""The hand-written check of posted events agrees with the marshmallow schema it stands in for:
whatever it accepts, the schema loads to the same dict; whatever the schema refuses, it passes
on to the schema (which names the problems)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.services.ingest.parse import _EVENT_IN, _fits, load_event

KEYS = ["id", "type", "member", "occurred_at", "org", "data", "extra"]
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=3),
    st.text(min_size=38, max_size=42),
    st.text(min_size=126, max_size=130),
    st.text(min_size=198, max_size=202),
    st.lists(st.text(max_size=2), max_size=2),
    st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), st.integers(), max_size=3),
)
events = st.dictionaries(st.sampled_from(KEYS), values, max_size=7)
valid = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=128), "type": st.text(min_size=1, max_size=100),
     "member": st.text(min_size=1, max_size=128), "occurred_at": st.text(min_size=1, max_size=40)},
    optional={"org": st.text(min_size=1, max_size=200),
              "data": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5))},
)  # fmt: skip


def schema_load(raw):
    try:
        return _EVENT_IN.load(raw)
    except ValidationError:
        return None


@settings(max_examples=600, deadline=None)
@given(st.one_of(events, valid))
def test_the_fast_check_accepts_only_what_the_schema_loads_and_loads_it_alike(raw):
    fast = _fits(raw)
    if fast is not None:
        assert fast == schema_load(raw)


@settings(max_examples=300, deadline=None)
@given(valid)
def test_every_event_that_fits_takes_the_fast_path(raw):
    assert _fits(raw) == schema_load(raw) and _fits(raw) is not None


def test_what_does_not_fit_is_refused_by_the_schema_with_its_messages():
    for raw in ({"id": "e1"}, {"id": 1, "type": "t", "member": "m", "occurred_at": "x"},
                {"id": "e", "type": "t", "member": "m", "occurred_at": "x", "data": None},
                {"id": "e", "type": "t", "member": "m", "occurred_at": "x", "more": 1}):  # fmt: skip
        assert _fits(raw) is None
        try:
            load_event(raw)
        except ValidationError as exc:
            assert exc.messages
        else:
            raise AssertionError(f"accepted {raw}")
