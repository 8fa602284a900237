"""The validated, immutable rule set the loader builds and the evaluator reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from .expr import Compiled


class Category(StrEnum):
    PIONEER = "pioneer"
    GOVERNANCE = "governance"
    VOLUNTEER = "volunteer"
    OTHER = "other"


class Per(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    EVER = "ever"


@dataclass(frozen=True, slots=True)
class Where:
    """Where a definition was written: file and 1-based line."""

    path: str
    line: int
    col: int = 1


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    values: tuple[str, ...] = ()
    unit: str | None = None
    default: object = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class EventType:
    name: str  # the type code, e.g. "pioneer.shift"
    title: str
    title_en: str
    description: str
    fields: dict[str, FieldSpec]
    span: bool
    where: Where

    defaults: dict[str, object] = field(default_factory=dict)  # declared defaults, by field
    units: dict[str, str] = field(default_factory=dict)  # declared units, by field


def pool_bucket(org: str, pool: str) -> str:
    """The counter of a named pool: shared within one tree (``sx…`` or ``ind…``), not across."""
    return f"pool:{org.split('.', 1)[0]}:{pool}"


@dataclass(frozen=True, slots=True)
class Cap:
    per: Per
    points: int | None
    count: int | None
    bucket: str  # counter key: the rule's key, or pool_bucket(org, pool)
    pool: str | None = None
    per_name: str = ""  # per as plain text, filled in: the evaluator's hot path reads it

    def __post_init__(self):
        object.__setattr__(self, "per_name", self.per.value)


@dataclass(frozen=True, slots=True)
class Rule:
    """One effective rule: inherited keys already merged with an override's."""

    key: str  # "<org that first defined the id>:<id>": stable across overrides, keys counters
    id: str
    org: str  # the organisation whose file gave this (possibly overriding) version
    name: str
    name_en: str
    on: tuple[str, ...]  # as written
    types: frozenset[str]  # declared event types it matches
    when: Compiled | None
    points: Compiled
    category: Category
    caps: tuple[Cap, ...]
    active_from: dt.date | None
    active_until: dt.date | None
    verify: bool
    multiplier: float | None
    emergency_only: bool
    stop: bool
    where: Where
    overrides: str | None = None  # org whose rule of the same id this one overrides


@dataclass(frozen=True, slots=True)
class Level:
    id: str
    name: str
    name_en: str
    min_points: int
    bonus: int
    icon: str
    where: Where


@dataclass(frozen=True, slots=True)
class Badge:
    id: str
    org: str
    name: str
    name_en: str
    description: str
    description_en: str
    icon: str
    kind: str
    params: dict[str, object]
    repeat_every: float | None
    repeat_max: int | None
    bonus: int
    where: Where


@dataclass(frozen=True, slots=True)
class Reward:
    id: str
    org: str
    name: str
    name_en: str
    description: str
    description_en: str
    cost: int
    stock_total: int | None
    stock_per: Per | None
    stock_per_count: int | None
    limit_per: Per | None
    limit_count: int | None
    min_level: str | None
    party_member_only: bool
    subtree: str | None  # only members of this organisation's subtree may redeem
    badge: str | None
    industry: str | None
    valid_from: dt.date | None
    valid_until: dt.date | None
    sponsor: str | None
    budget_per: Per | None
    budget_points: int | None
    budget_yuan: float | None
    yuan_per_item: float | None
    pickup_hours: int | None
    icon: str
    where: Where


@dataclass(frozen=True, slots=True)
class Expiry:
    policy: str
    months: int | None
    warn_days: int


@dataclass(frozen=True, slots=True)
class Example:
    name: str
    raw: dict
    where: Where


@dataclass(frozen=True, slots=True)
class RulesFile:
    org: str
    name: str
    name_en: str
    path: str
    own_rules: tuple[
        Rule, ...
    ]  # this file's rules after merging overrides (disabled ones left out)
    disabled: frozenset[str]  # ids of inherited rules this file switches off
    levels: tuple[Level, ...]
    badges: tuple[Badge, ...]
    rewards: tuple[Reward, ...]
    expiry: Expiry | None
    examples: tuple[Example, ...]


@dataclass(frozen=True)
class EventFacts:
    """One event as the evaluator sees it. ``occurred_at`` must be timezone-aware."""

    type: str
    org: str
    occurred_at: dt.datetime
    data: dict
    partner: str = ""


@dataclass(frozen=True)
class MemberFacts:
    party_member: bool = False
    industry: str | None = None
    level: str | None = None
    primary_org: str | None = None
    orgs: tuple[str, ...] = ()
    tags: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class EmergencyFacts:
    """An emergency declared for a region the event's organisation is in."""

    name: str
    kind: str = ""
