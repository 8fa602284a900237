"""A small declarative description of the rules format.

One description serves two readers: ``validate`` checks a parsed document and reports
``path:line:column`` errors (unknown keys come with a suggestion), and ``json_schema`` emits the
JSON Schema published as ``rules/schema.json`` for editors. Keeping both in one place means the
schema an editor uses can never drift from what ``rules check`` accepts.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass

from .diagnostics import Reporter
from .source import Pos, YDict, YList

INVALID = object()  # a value that failed validation; callers skip it


def _type_name(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dt.datetime):
        return "a date and time"
    if isinstance(value, dt.date):
        return "a date"
    return type(value).__name__


class Spec:
    """Base of every spec node."""

    description: str = ""

    def check(self, value: object, pos: Pos, rep: Reporter, what: str) -> object:
        raise NotImplementedError

    def schema(self) -> dict:
        raise NotImplementedError

    def _doc(self, out: dict) -> dict:
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Str(Spec):
    pattern: str | None = None
    max_len: int = 500
    choices: tuple[str, ...] = ()
    description: str = ""
    hint: str = ""

    def check(self, value, pos, rep, what):
        if not isinstance(value, str):
            rep.error(pos, f"{what} must be text, not {_type_name(value)}")
            return INVALID
        if self.choices and value not in self.choices:
            near = difflib.get_close_matches(value, self.choices, n=1)
            tip = f" (did you mean {near[0]!r}?)" if near else ""
            rep.error(pos, f"{what} must be one of {', '.join(self.choices)}; got {value!r}{tip}")
            return INVALID
        if self.pattern and not re.fullmatch(self.pattern, value):
            rep.error(pos, f"{what} {value!r} is not valid{': ' + self.hint if self.hint else ''}")
            return INVALID
        if len(value) > self.max_len:
            rep.error(pos, f"{what} is longer than {self.max_len} characters")
            return INVALID
        return value

    def schema(self):
        out: dict = {"type": "string", "maxLength": self.max_len}
        if self.choices:
            out["enum"] = list(self.choices)
        if self.pattern:
            out["pattern"] = f"^(?:{self.pattern})$"
        return self._doc(out)


@dataclass
class Num(Spec):
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    exclusive_min: bool = False
    description: str = ""

    def check(self, value, pos, rep, what):
        ok = isinstance(value, int) if self.integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            kind = "a whole number" if self.integer else "a number"
            rep.error(pos, f"{what} must be {kind}, not {_type_name(value)}")
            return INVALID
        if value != value or value in (float("inf"), float("-inf")):
            rep.error(pos, f"{what} must be a finite number")
            return INVALID
        if self.minimum is not None:
            if self.exclusive_min and value <= self.minimum:
                rep.error(pos, f"{what} must be greater than {self.minimum:g}; got {value}")
                return INVALID
            if value < self.minimum:
                rep.error(pos, f"{what} must be at least {self.minimum:g}; got {value}")
                return INVALID
        if self.maximum is not None and value > self.maximum:
            rep.error(pos, f"{what} must be at most {self.maximum:g}; got {value}")
            return INVALID
        return value

    def schema(self):
        out: dict = {"type": "integer" if self.integer else "number"}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_min else "minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return self._doc(out)


def Int(minimum=None, maximum=None, description=""):
    return Num(minimum, maximum, integer=True, description=description)


@dataclass
class Bool(Spec):
    description: str = ""

    def check(self, value, pos, rep, what):
        if not isinstance(value, bool):
            rep.error(pos, f"{what} must be true or false, not {_type_name(value)}")
            return INVALID
        return value

    def schema(self):
        return self._doc({"type": "boolean"})


@dataclass
class Date(Spec):
    """A calendar date written as 2026-11-30 (YAML reads it as a date)."""

    description: str = ""

    def check(self, value, pos, rep, what):
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            rep.error(pos, f"{what} must be a date like 2026-11-30, not {_type_name(value)}")
            return INVALID
        return value

    def schema(self):
        return self._doc({"type": "string", "format": "date"})


@dataclass
class DateTime(Spec):
    """A date and time: 2026-11-20T09:00:00 (local time) or with an offset."""

    description: str = ""

    def check(self, value, pos, rep, what):
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                pass
        rep.error(pos, f"{what} must be a date and time like 2026-11-20T09:00:00")
        return INVALID

    def schema(self):
        return self._doc({"type": "string", "format": "date-time"})


@dataclass
class AnyValue(Spec):
    description: str = ""

    def check(self, value, pos, rep, what):
        return value

    def schema(self):
        return self._doc({})


@dataclass
class ListOf(Spec):
    item: Spec
    min_items: int = 0
    max_items: int = 10_000
    description: str = ""

    def check(self, value, pos, rep, what):
        if not isinstance(value, list):
            rep.error(pos, f"{what} must be a list, not {_type_name(value)}")
            return INVALID
        if len(value) < self.min_items:
            rep.error(pos, f"{what} needs at least {self.min_items} item(s)")
            return INVALID
        if len(value) > self.max_items:
            rep.error(pos, f"{what} has more than {self.max_items} items")
            return INVALID
        out = []
        for i, item in enumerate(value):
            ipos = value.item_pos[i] if isinstance(value, YList) else pos
            checked = self.item.check(item, ipos, rep, f"{what}[{i + 1}]")
            if checked is not INVALID:
                out.append(checked)
        return out

    def schema(self):
        out: dict = {"type": "array", "items": self.item.schema()}
        if self.min_items:
            out["minItems"] = self.min_items
        return self._doc(out)


@dataclass
class OneOf(Spec):
    """The first alternative whose ``accepts`` says yes validates the value."""

    options: tuple[tuple[type | tuple[type, ...], Spec], ...]
    expected: str
    description: str = ""

    def check(self, value, pos, rep, what):
        for types, spec in self.options:
            if isinstance(value, types) and not (
                isinstance(value, bool) and bool not in _flat(types)
            ):
                return spec.check(value, pos, rep, what)
        rep.error(pos, f"{what} must be {self.expected}, not {_type_name(value)}")
        return INVALID

    def schema(self):
        return self._doc({"anyOf": [spec.schema() for _, spec in self.options]})


def _flat(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


@dataclass
class MapOf(Spec):
    """A mapping whose keys match ``key_pattern`` and whose values all follow ``value``."""

    value: Spec
    key_pattern: str = r".+"
    key_hint: str = ""
    max_items: int = 10_000
    description: str = ""

    def check(self, value, pos, rep, what):
        if not isinstance(value, dict):
            rep.error(pos, f"{what} must be a mapping, not {_type_name(value)}")
            return INVALID
        if len(value) > self.max_items:
            rep.error(pos, f"{what} has more than {self.max_items} entries")
            return INVALID
        out = {}
        for key, item in value.items():
            kpos = value.key_pos.get(key, pos) if isinstance(value, YDict) else pos
            vpos = value.val_pos.get(key, pos) if isinstance(value, YDict) else pos
            if not re.fullmatch(self.key_pattern, key):
                hint = f": {self.key_hint}" if self.key_hint else ""
                rep.error(kpos, f"{what}: key {key!r} is not valid{hint}")
                continue
            checked = self.value.check(item, vpos, rep, f"{what}.{key}")
            if checked is not INVALID:
                out[key] = checked
        return out

    def schema(self):
        return self._doc(
            {
                "type": "object",
                "propertyNames": {"pattern": f"^(?:{self.key_pattern})$"},
                "additionalProperties": self.value.schema(),
            }
        )


@dataclass
class Obj(Spec):
    """A mapping with known keys. Unknown keys are errors, with a suggestion when one is close.

    ``required`` keys are reported missing; keys needed only in some cases (a rule that
    overrides an inherited one gives only what it changes) are checked by the loader.
    """

    fields: dict[str, Spec]
    required: tuple[str, ...] = ()
    exactly_one: tuple[str, ...] = ()
    description: str = ""
    title: str = ""

    def check(self, value, pos, rep, what):
        if not isinstance(value, dict):
            rep.error(pos, f"{what} must be a mapping, not {_type_name(value)}")
            return INVALID
        kp = value.key_pos if isinstance(value, YDict) else {}
        vp = value.val_pos if isinstance(value, YDict) else {}
        out = YDict(pos)
        ok = True
        for key, item in value.items():
            spec = self.fields.get(key)
            if spec is None:
                near = difflib.get_close_matches(key, list(self.fields), n=1, cutoff=0.6)
                tip = (
                    f"; did you mean {near[0]!r}?"
                    if near
                    else f"; known keys: {', '.join(self.fields)}"
                )
                rep.error(kp.get(key, pos), f"unknown key {key!r} in {what}{tip}")
                ok = False
                continue
            checked = spec.check(item, vp.get(key, pos), rep, f"{what}.{key}" if what else key)
            if checked is INVALID:
                ok = False
                continue
            out[key] = checked
            out.key_pos[key] = kp.get(key, pos)
            out.val_pos[key] = vp.get(key, pos)
        for key in self.required:
            if key not in value:
                rep.error(pos, f"{what or 'file'} is missing required key {key!r}")
                ok = False
        if self.exactly_one:
            given = [k for k in self.exactly_one if k in value]
            if len(given) != 1:
                rep.error(pos, f"{what} needs exactly one of {', '.join(self.exactly_one)}")
                ok = False
        # Anything wrong inside makes the whole mapping invalid, so later stages only ever see
        # complete values; the errors are already reported.
        return out if ok else INVALID

    def schema(self):
        out: dict = {
            "type": "object",
            "properties": {k: v.schema() for k, v in self.fields.items()},
            "additionalProperties": False,
        }
        if self.title:
            out["title"] = self.title
        if self.required:
            out["required"] = list(self.required)
        if self.exactly_one:
            out["oneOf"] = [{"required": [k]} for k in self.exactly_one]
        return self._doc(out)
