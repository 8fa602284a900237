"""The rules format: every key a rules file or the event-types file may hold.

Structure only; meaning (expressions, inheritance, cross-references) is checked by the loader.
``rules/schema.json`` is generated from these specs (``scripts/gen_rules_schema.py``) and a test
asserts the shipped copy is current.
"""

from __future__ import annotations

from .spec import (
    AnyValue,
    Bool,
    Date,
    DateTime,
    Int,
    ListOf,
    MapOf,
    Num,
    Obj,
    OneOf,
    Str,
)

ORG_CODE = r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*"
ORG_HINT = "lower-case dotted path such as sx.ty.xiaodian or ind.delivery"
ID = r"[a-z0-9][a-z0-9_-]*"
ID_HINT = "lower-case letters, digits, '-' and '_'"
RULE_REF = rf"({ORG_CODE}:)?{ID}"  # a rule id, or org:id to name one tree's rule exactly
EVENT_TYPE = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*"
EVENT_PATTERN = r"\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?"
FIELD_NAME = r"[a-z][a-z0-9_]*"

CATEGORIES = ("pioneer", "governance", "volunteer", "other")
PERIODS = ("day", "week", "month", "year", "ever")
FIELD_TYPES = ("number", "integer", "string", "boolean", "datetime", "date", "enum")
UNITS = ("hours", "minutes", "km", "count", "people", "yuan")
MAX_POINTS = 100_000

EXPRESSION = Str(max_len=1000, description="An expression; see docs/rules.md")
_EVENT_PATTERN = Str(pattern=EVENT_PATTERN, hint="an event type, prefix.* or *")
ON = OneOf(
    ((str, _EVENT_PATTERN), (list, ListOf(_EVENT_PATTERN, 1))),
    expected="an event type, a prefix.* pattern or a list of them",
    description="Event types: one, a list, 'prefix.*' or '*'",
)

# --- event types -------------------------------------------------------------------------------

FIELD = Obj(
    {
        "type": Str(choices=FIELD_TYPES, description="The field's type"),
        "description": Str(max_len=500),
        "required": Bool(description="Events without this field are refused"),
        "min": Num(description="Smallest allowed value (number, integer)"),
        "max": Num(description="Largest allowed value (number, integer)"),
        "max_length": Int(1, 10_000, description="Longest allowed text (string)"),
        "values": ListOf(Str(max_len=100), min_items=1, description="Allowed values (enum)"),
        "unit": Str(choices=UNITS, description="Unit, shown in explanations ('3 h')"),
        "default": AnyValue(description="Value used by expressions when an event leaves it out"),
    },
    required=("type",),
    title="Event field",
)

EVENT_TYPE_DEF = Obj(
    {
        "name": Str(max_len=100, description="Readable name (Chinese)"),
        "name_en": Str(max_len=100, description="Readable name (English)"),
        "description": Str(max_len=2000),
        "fields": MapOf(FIELD, key_pattern=FIELD_NAME, key_hint="lower_snake_case", max_items=50),
        "span": Bool(
            description="Events carry data.start/data.end; overlapping spans of one member "
            "for the same type are the same duty reported twice"
        ),
    },
    required=("name",),
    title="Event type",
)

EVENT_TYPES_FILE = Obj(
    {
        "event_types": MapOf(
            EVENT_TYPE_DEF,
            key_pattern=EVENT_TYPE,
            key_hint="dotted lower_snake_case such as pioneer.shift",
            max_items=1000,
        )
    },
    required=("event_types",),
    title="Pioneer Points event types",
)

# --- rules -------------------------------------------------------------------------------------

CAP = Obj(
    {
        "per": Str(choices=PERIODS, description="Period the cap counts over (local time)"),
        "points": Int(1, MAX_POINTS, description="Most points this rule may award per period"),
        "count": Int(1, 10_000, description="Most awards this rule may make per period"),
        "pool": Str(
            pattern=ID,
            hint=ID_HINT,
            max_len=64,
            description="Share this cap with every rule of the same tree (sx…, ind…) that names "
            "the same pool",
        ),
    },
    required=("per",),
    exactly_one=("points", "count"),
    title="Cap",
)

WINDOW = Obj(
    {
        "from": Date(description="First day (inclusive, local time)"),
        "until": Date(description="Last day (inclusive, local time)"),
    },
    title="Date window",
)

EMERGENCY = Obj(
    {
        "multiplier": Num(0, 10, exclusive_min=True, description="Points are multiplied by this"),
        "only": Bool(description="The rule applies only while an emergency is declared"),
    },
    title="Emergency (平急转换) behaviour",
)

RULE = Obj(
    {
        "id": Str(pattern=ID, hint=ID_HINT, max_len=64, description="Unique in the file"),
        "name": Str(max_len=100, description="Readable name shown to riders (Chinese)"),
        "name_en": Str(max_len=100, description="Readable name (English)"),
        "description": Str(max_len=2000),
        "on": ON,
        "when": EXPRESSION,
        "points": OneOf(
            ((int, Int(0, MAX_POINTS)), (str, EXPRESSION)),
            expected="a whole number or an expression",
        ),
        "category": Str(choices=CATEGORIES),
        "caps": ListOf(CAP, max_items=10),
        "active": WINDOW,
        "verify": Bool(description="Events wait for confirmation before earning"),
        "emergency": EMERGENCY,
        "stop": Bool(description="No later rule sees an event this rule matched"),
        "disabled": Bool(description="Switch off the inherited rule with this id"),
    },
    # name, on, points and category are required too, except in a rule that overrides an
    # inherited one (same id): the loader checks them after merging.
    required=("id",),
    title="Rule",
)

LEVEL = Obj(
    {
        "id": Str(pattern=ID, hint=ID_HINT, max_len=64),
        "name": Str(max_len=50),
        "name_en": Str(max_len=50),
        "min_points": Int(0, 100_000_000, description="Lifetime points needed"),
        "bonus": Int(0, MAX_POINTS, description="Points granted once on reaching the level"),
        "icon": Str(max_len=64),
    },
    required=("id", "name", "min_points"),
    title="Level",
)

BADGE_CONDITION = Obj(
    {
        "kind": Str(
            description="event_count, field_sum, months_active, week_streak, rank, emergency, "
            "points_total"
        ),
        "on": ON,
        "field": Str(pattern=FIELD_NAME),
        "at_least": Num(0, 1_000_000_000, exclusive_min=True),
        "board": Str(
            choices=("station", "street", "district", "city", "province", "industry", "org"),
            description="Which of the member's boards (rank badges)",
        ),
        "period": Str(choices=("week", "month", "year")),
        "category": Str(choices=(*CATEGORIES, "total")),
        "top": Int(1, 10_000),
    },
    required=("kind",),
    title="Badge condition",
)

BADGE = Obj(
    {
        "id": Str(pattern=ID, hint=ID_HINT, max_len=64),
        "name": Str(max_len=50),
        "name_en": Str(max_len=50),
        "description": Str(max_len=500),
        "description_en": Str(max_len=500),
        "icon": Str(max_len=64),
        "condition": BADGE_CONDITION,
        "repeat": OneOf(
            (
                (bool, Bool()),
                (
                    dict,
                    Obj(
                        {"every": Num(0, 1_000_000_000, exclusive_min=True), "max": Int(1, 1000)},
                        required=("every",),
                    ),
                ),
            ),
            expected="false, or {every: N, max: M}",
        ),
        "bonus": Int(0, MAX_POINTS),
    },
    required=("id", "name", "condition"),
    title="Badge",
)

PER_PERIOD = Obj(
    {"per": Str(choices=PERIODS[:-1]), "count": Int(1, 1_000_000)},
    required=("per", "count"),
)

REWARD = Obj(
    {
        "id": Str(pattern=ID, hint=ID_HINT, max_len=64),
        "name": Str(max_len=100),
        "name_en": Str(max_len=100),
        "description": Str(max_len=2000),
        "description_en": Str(max_len=2000),
        "cost": Int(1, 10_000_000, description="Points a redemption costs"),
        "stock": Obj(
            {
                "total": Int(0, 10_000_000, description="Items available in all"),
                "per_period": PER_PERIOD,
            }
        ),
        "limit": PER_PERIOD,
        "eligibility": Obj(
            {
                "min_level": Str(pattern=ID),
                "party_member": Bool(),
                "subtree": OneOf(
                    (
                        (bool, Bool()),
                        (str, Str(pattern=ORG_CODE, hint=ORG_HINT)),
                    ),
                    expected="true (this organisation) or an organisation code",
                    description="Only members of this organisation's subtree (true) or of the "
                    "named organisation's (e.g. a service centre serving its whole city: sx.ty)",
                ),
                "badge": Str(pattern=ID),
                "industry": Str(pattern=ID),
            }
        ),
        "valid": WINDOW,
        "sponsor": Obj(
            {
                "name": Str(max_len=100),
                "budget": Obj(
                    {
                        "per": Str(choices=PERIODS),
                        "points": Int(1, 1_000_000_000),
                        "yuan": Num(0, 1_000_000_000, exclusive_min=True),
                    },
                    required=("per",),
                    exactly_one=("points", "yuan"),
                ),
                "yuan_per_item": Num(0, 1_000_000, exclusive_min=True),
            },
            required=("name",),
        ),
        "pickup_hours": Int(1, 24 * 90, description="Unconfirmed redemptions expire after this"),
        "icon": Str(max_len=64),
    },
    required=("id", "name", "cost"),
    title="Reward",
)

EXPIRY = Obj(
    {
        "policy": Str(
            choices=("end_of_following_year", "after_months"),
            description="When awarded points expire",
        ),
        "months": Int(1, 120, description="With after_months"),
        "warn_days": Int(0, 365),
    },
    required=("policy",),
    title="Points expiry",
)

EXAMPLE = Obj(
    {
        "name": Str(max_len=200),
        "event": Obj(
            {
                "type": Str(pattern=EVENT_TYPE),
                "org": Str(pattern=ORG_CODE, hint=ORG_HINT),
                "occurred_at": DateTime(),
                "data": MapOf(AnyValue(), key_pattern=FIELD_NAME),
                "partner": Str(max_len=64),
            },
            required=("type", "occurred_at"),
        ),
        "member": Obj(
            {
                "party_member": Bool(),
                "industry": Str(pattern=ID),
                "level": Str(pattern=ID),
                "orgs": ListOf(Str(pattern=ORG_CODE)),
                "tags": ListOf(Str(max_len=64)),
            }
        ),
        "context": Obj(
            {"emergency": Bool(), "emergency_kind": Str(max_len=64)},
        ),
        "counters": ListOf(
            Obj(
                {
                    "rule": Str(pattern=ID),
                    "pool": Str(pattern=ID),
                    "per": Str(choices=PERIODS),
                    "points": Int(0, 100_000_000),
                    "count": Int(0, 100_000_000),
                },
                required=("per",),
                exactly_one=("rule", "pool"),
            )
        ),
        "verified": Bool(description="Evaluate as the confirmation of a verified event"),
        "expect": Obj(
            {
                "points": Int(0, 100_000_000, description="Total points awarded"),
                "status": Str(choices=("awarded", "pending", "no_match")),
                "rules": MapOf(
                    Int(0, 100_000_000), key_pattern=RULE_REF, description="Points per rule id"
                ),
            }
        ),
    },
    required=("name", "event", "expect"),
    title="Example",
)

RULES_FILE = Obj(
    {
        "$schema": Str(),
        "org": Str(pattern=ORG_CODE, hint=ORG_HINT, max_len=200),
        "name": Str(max_len=100),
        "name_en": Str(max_len=100),
        "description": Str(max_len=2000),
        "rules": ListOf(RULE, max_items=1000),
        "levels": ListOf(LEVEL, max_items=50),
        "badges": ListOf(BADGE, max_items=500),
        "rewards": ListOf(REWARD, max_items=1000),
        "expiry": EXPIRY,
        "examples": ListOf(EXAMPLE, max_items=1000),
    },
    required=("org", "name"),
    title="Pioneer Points rules file",
)

EVENT_TYPES_FILENAME = "event-types.yaml"


def json_schema() -> dict:
    """The JSON Schema of both file kinds, for editors (``rules/schema.json``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "pioneer-points-rules.schema.json",
        "title": "Pioneer Points rules",
        "description": "A rules file (rules/<org-code>.yaml) or the event types file "
        f"(rules/{EVENT_TYPES_FILENAME}). Generated from app/engine/format.py.",
        "anyOf": [RULES_FILE.schema(), EVENT_TYPES_FILE.schema()],
    }
