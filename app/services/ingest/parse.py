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
    body_hash: str = ""
    parsed: dict = field(default_factory=dict)
    etype: object = None  # the rules' EventType
    occurred_at: dt.datetime | None = None
    member_id: int | None = None
    org: str = ""
    data: dict = field(default_factory=dict)
    outcome: Outcome | None = None

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
        parsed = _EVENT_IN.load(raw)
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
