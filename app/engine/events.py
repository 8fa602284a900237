"""Check an event's data against its declared type (the API and rule examples both use this)."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from .model import EventType, FieldSpec

MAX_TEXT = 1000


class EventDataError(Exception):
    """Event data that does not fit its type; ``errors`` maps each field to what is wrong."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def validate_event_data(event_type: EventType, data: object, tz: ZoneInfo) -> dict:
    """Return ``data`` with values converted to their declared types, or raise ``EventDataError``.

    Unknown fields are refused (a typo must not silently earn nothing), date-times without an
    offset are taken as local time in ``tz``, and a ``span`` type needs ``end`` after ``start``.
    """
    if not isinstance(data, dict):
        raise EventDataError({"data": "must be an object"})
    errors: dict[str, str] = {}
    clean: dict = {}
    for key, value in data.items():
        spec = event_type.fields.get(key)
        if spec is None:
            known = ", ".join(event_type.fields) or "none"
            errors[str(key)] = f"unknown field for {event_type.name} (known: {known})"
            continue
        if value is None and not spec.required:
            continue
        try:
            clean[key] = convert_field(spec, value, tz)
        except ValueError as exc:
            errors[key] = str(exc)
    for name, spec in event_type.fields.items():
        if spec.required and name not in data and name not in errors:
            errors[name] = "is required"
    if event_type.span and not errors:
        start, end = clean.get("start"), clean.get("end")
        if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
            if end <= start:
                errors["end"] = "must be after start"
            else:
                errors.update(_longer_than_span(event_type, clean, end - start))
    if errors:
        raise EventDataError(errors)
    return clean


_SPAN_TOLERANCE = dt.timedelta(minutes=1)


def _longer_than_span(event_type: EventType, clean: dict, span: dt.timedelta) -> dict[str, str]:
    """Durations (fields in hours or minutes) cannot exceed the span they happened in."""
    errors = {}
    for name, spec in event_type.fields.items():
        value = clean.get(name)
        if value is None or spec.unit not in ("hours", "minutes"):
            continue
        duration = (
            dt.timedelta(hours=value) if spec.unit == "hours" else dt.timedelta(minutes=value)
        )
        if duration > span + _SPAN_TOLERANCE:
            hours = span.total_seconds() / 3600
            errors[name] = f"must not exceed the time from start to end ({hours:.2f} h)"
    return errors


def convert_field(spec: FieldSpec, value: object, tz: ZoneInfo) -> object:
    """Convert one value to ``spec``'s type, raising ``ValueError`` with a short reason."""
    kind = spec.type
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a {'whole number' if kind == 'integer' else 'number'}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        if kind == "integer" and not float(value).is_integer():
            raise ValueError("must be a whole number")
        if kind == "integer":
            value = int(value)
        if spec.min is not None and value < spec.min:
            raise ValueError(f"must be at least {spec.min:g}")
        if spec.max is not None and value > spec.max:
            raise ValueError(f"must be at most {spec.max:g}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind in ("string", "enum"):
        if not isinstance(value, str):
            raise ValueError("must be text")
        if kind == "enum" and value not in spec.values:
            raise ValueError(f"must be one of {', '.join(spec.values)}")
        limit = spec.max_length or MAX_TEXT
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return value
    if kind == "datetime":
        if isinstance(value, dt.datetime):
            moment = value
        elif isinstance(value, str) and len(value) <= 40:
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("must be an ISO 8601 date-time") from None
        else:
            raise ValueError("must be an ISO 8601 date-time")
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    if kind == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str) and len(value) <= 20:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise ValueError("must be an ISO 8601 date")
    raise ValueError(f"unsupported field type {kind}")  # pragma: no cover - format forbids it
