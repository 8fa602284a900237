"""Parsing posted events: the schema, per-event checks, and the outcome of each event."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ...engine import EventDataError, validate_event_data
from ...errors import AppError, Conflict, Forbidden, Invalid


class EventIn(Schema):
    """One activity event as a partner posts it."""

    class Meta:
        unknown = RAISE

    id = fields.String(
        required=True, validate=validate.Length(1, 128), metadata={"description": "Partner's id"}
    )
    type = fields.String(required=True, validate=validate.Length(1, 100))
    member = fields.String(
        required=True,
        validate=validate.Length(1, 128),
        metadata={"description": "The partner's reference of the member"},
    )
    occurred_at = fields.String(
        required=True,
        validate=validate.Length(1, 40),
        metadata={"description": "ISO 8601; without an offset it is local time (APP_TIMEZONE)"},
    )
    org = fields.String(
        validate=validate.Length(1, 200),
        metadata={"description": "Where it happened; default: the member's primary organisation"},
    )
    data = fields.Dict(
        keys=fields.String(), load_default=dict, metadata={"description": "Per event type"}
    )


_EVENT_IN = EventIn()

# The schema's strings and their lengths, checked by hand for the events that fit it (nearly
# all of them): marshmallow costs ~40 µs an event, a fifth of a batch's CPU. What does not
# fit goes through marshmallow, which names every problem.
_STRINGS = {
    name: (f.required, f.validators[0].min, f.validators[0].max)
    for name, f in EventIn._declared_fields.items()
    if isinstance(f, fields.String)
}
_KEYS = frozenset(EventIn._declared_fields)


def _fits(raw: dict) -> dict | None:
    """What ``EventIn().load(raw)`` returns when ``raw`` fits the schema, else None."""
    if not _KEYS.issuperset(raw):
        return None
    parsed = {}
    for name, (required, lo, hi) in _STRINGS.items():
        value = raw.get(name)
        if value is None:
            if required or name in raw:
                return None
            continue
        if type(value) is not str or not lo <= len(value) <= hi:
            return None
        parsed[name] = value
    data = raw.get("data", _ABSENT)
    if data is _ABSENT:
        parsed["data"] = {}
    elif type(data) is dict and all(type(k) is str for k in data):
        parsed["data"] = dict(data)
    else:
        return None
    return parsed


_ABSENT = object()


def load_event(raw: dict) -> dict:
    """The posted event checked against ``EventIn``; ValidationError when it does not fit."""
    parsed = _fits(raw)
    return parsed if parsed is not None else _EVENT_IN.load(raw)


@dataclass
class Outcome:
    """What happened to one posted event: a response body with its status, or an error."""

    status: int
    body: dict | None = None
    error: AppError | None = None


@dataclass
class Item:
    """One posted event on its way through ingest."""

    index: int
    raw: object
    partner: object  # who posted it
    body_hash: str = ""
    parsed: dict = field(default_factory=dict)
    etype: object = None  # the rules' EventType
    occurred_at: dt.datetime | None = None
    member_id: int | None = None
    org: str = ""
    data: dict = field(default_factory=dict)
    outcome: Outcome | None = None

    @property
    def member_key(self) -> tuple[int, str]:
        """The member as (partner, the partner's reference): two partners' refs may be alike."""
        return (self.partner.id, self.parsed["member"])

    @property
    def event_key(self) -> tuple[int, str]:
        """The event as (partner, the partner's event id), as it is stored once."""
        return (self.partner.id, self.parsed["id"])

    @property
    def span(self) -> tuple[dt.datetime, dt.datetime] | None:
        return (self.data["start"], self.data["end"]) if self.etype.span else None


def body_hash(raw: object) -> str:
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fail(error: AppError) -> Outcome:
    return Outcome(error.status, None, error)


def conflict(eid: str) -> Outcome:
    return fail(
        Conflict(
            f"event {eid!r} was posted before with another body", {"id": eid}, "event_conflict"
        )
    )


class Later(Outcome):
    """A repeat of an event earlier in the same batch: answered like a replay once the
    first is scored."""

    def __init__(self, first: Item, body_hash_: str):
        super().__init__(0)
        self.first = first
        self.same = first.body_hash == body_hash_

    def resolve(self) -> Outcome:
        first = self.first.outcome
        if not self.same:
            return conflict(self.first.parsed["id"])
        if first.body is None:
            return first
        return Outcome(200, first.body)


def parse_item(item: Item, partner, rules, config, now: dt.datetime) -> None:
    """Check one posted event against the schema, the rules' event types, the partner's
    rights and the time window; set ``item.outcome`` to an error if it fails."""
    raw = item.raw
    if not isinstance(raw, dict):
        item.outcome = fail(Invalid("an event must be a JSON object", code="invalid"))
        return
    try:
        parsed = load_event(raw)
    except ValidationError as exc:
        if isinstance(raw.get("id"), str):
            item.parsed = {"id": raw["id"]}
        item.outcome = fail(Invalid("the event does not fit the schema", exc.messages))
        return
    item.parsed = parsed
    item.body_hash = body_hash(raw)
    etype = rules.event_types.get(parsed["type"])
    if etype is None:
        item.outcome = fail(Invalid(f"unknown event type {parsed['type']!r}",
                                    {"type": parsed["type"]}, "unknown_event_type"))  # fmt: skip
        return
    if not partner.may_report_type(etype.name):
        item.outcome = fail(Forbidden(f"this partner may not report {etype.name} events",
                                      {"type": etype.name}, "type_not_allowed"))  # fmt: skip
        return
    item.etype = etype
    try:
        occurred = dt.datetime.fromisoformat(parsed["occurred_at"])
    except ValueError:
        item.outcome = fail(Invalid("occurred_at must be an ISO 8601 date-time",
                                    {"occurred_at": parsed["occurred_at"]}))  # fmt: skip
        return
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=rules.tz)
    if occurred > now + dt.timedelta(seconds=config["EVENT_FUTURE_SECONDS"]):
        item.outcome = fail(
            Invalid("occurred_at is in the future", {"occurred_at": parsed["occurred_at"]},
                    "in_future")
        )  # fmt: skip
        return
    if occurred < now - dt.timedelta(days=config["EVENT_HORIZON_DAYS"]):
        item.outcome = fail(Invalid(
            f"occurred_at is more than {config['EVENT_HORIZON_DAYS']} days ago",
            {"occurred_at": parsed["occurred_at"]}, "too_old"))  # fmt: skip
        return
    item.occurred_at = occurred
    try:
        item.data = validate_event_data(etype, parsed["data"], rules.tz)
    except EventDataError as exc:
        item.outcome = fail(Invalid(f"data does not fit {etype.name}", exc.errors, "invalid_data"))
