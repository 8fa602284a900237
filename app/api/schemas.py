"""Marshmallow schemas of the API: request bodies load at entry, responses dump at exit."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..errors import ErrorDetail, ErrorOut

__all__ = ["ErrorDetail", "ErrorOut"]

ORG = validate.Regexp(
    r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*$", error="not an organisation code"
)


class MemberIn(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(1, 100))
    phone = fields.String(
        validate=validate.Regexp(r"^\+?[0-9 ()-]{5,24}$", error="not a phone number"),
        load_only=True,
        metadata={"description": "Kept only as a keyed hash; never returned"},
    )
    primary_org = fields.String(validate=[validate.Length(1, 200), ORG])
    orgs = fields.List(
        fields.String(validate=[validate.Length(1, 200), ORG]), validate=validate.Length(max=50)
    )
    party_member = fields.Boolean(truthy={True}, falsy={False})
    industry = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$"))
    tags = fields.List(
        fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$")),
        validate=validate.Length(max=50),
    )
    hide_from_boards = fields.Boolean(
        truthy={True},
        falsy={False},
        metadata={"description": "Listed on public boards without a name (匿名)"},
    )


class PeriodTotals(Schema):
    start = fields.String()
    total = fields.Integer()
    by_category = fields.Dict(keys=fields.String(), values=fields.Integer())


class NextLevel(Schema):
    id = fields.String()
    name = fields.String()
    name_en = fields.String()
    min_points = fields.Integer()
    points_to_go = fields.Integer()


class LevelInfo(Schema):
    id = fields.String()
    name = fields.String()
    name_en = fields.String()
    min_points = fields.Integer()
    icon = fields.String()
    next = fields.Nested(NextLevel, allow_none=True)


class BadgeHeld(Schema):
    badge = fields.String(metadata={"description": "<org>:<id>"})
    name = fields.String()
    name_en = fields.String()
    description = fields.String()
    icon = fields.String()
    count = fields.Integer(metadata={"description": "Grants held (repeatable badges)"})
    granted_at = fields.DateTime(metadata={"description": "The latest grant"})
    reason = fields.String(metadata={"description": "Why the latest grant was made"})


class Expiring(Schema):
    points = fields.Integer(metadata={"description": "Points that lapse unless spent first"})
    at = fields.DateTime(
        metadata={
            "description": "By when: the next cut-off (end_of_following_year), or the "
            "end of the warning days (after_months)"
        }
    )


class MemberOut(Schema):
    ref = fields.String()
    name = fields.String()
    primary_org = fields.String()
    orgs = fields.List(fields.String())
    party_member = fields.Boolean()
    industry = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    balance = fields.Integer()
    lifetime_points = fields.Integer()
    level = fields.String(allow_none=True)
    hide_from_boards = fields.Boolean()
    this_week = fields.Nested(PeriodTotals)
    this_month = fields.Nested(PeriodTotals)
    level_info = fields.Nested(LevelInfo, allow_none=True)
    badges = fields.List(fields.Nested(BadgeHeld))
    expiring = fields.Nested(Expiring, allow_none=True)


class LoginLinkOut(Schema):
    url = fields.String(metadata={"description": "Open it in the app's web view; works once"})
    expires_at = fields.DateTime()


class AwardOut(Schema):
    rule = fields.String()
    points = fields.Integer()
    reason = fields.String()
    pending = fields.Boolean()


class GrantOut(Schema):
    badge = fields.String()
    n = fields.Integer()
    reason = fields.String()
    bonus = fields.Integer()


class EventResult(Schema):
    event = fields.String()
    status = fields.String(
        metadata={"enum": ["awarded", "pending", "rejected", "no_match", "duplicate"]}
    )
    points = fields.Integer()
    awards = fields.List(fields.Nested(AwardOut))
    balance = fields.Integer()
    rules_version = fields.String()
    reason = fields.String()
    dry_run = fields.Boolean()
    badges = fields.List(fields.Nested(GrantOut), metadata={"description": "Badges it earned"})
    level = fields.String(metadata={"description": "The level it lifted the member to"})
    bonus = fields.Integer(
        metadata={"description": "Bonus points of the badges and levels it earned (in balance)"}
    )


class BatchIn(Schema):
    # Items are validated one by one (as EventIn): a bad one, even one that is not an
    # object, gets its own error in the results and does not fail the request, so the
    # document promises no more than that.
    events = fields.List(
        fields.Raw(),
        required=True,
        validate=validate.Length(1, 1000),
        metadata={"description": "1 to BATCH_LIMIT events, each as EventIn"},
    )


class BatchItem(Schema):
    index = fields.Integer()
    status = fields.Integer(metadata={"description": "What the single-event API would answer"})
    result = fields.Nested(EventResult, allow_none=True)
    error = fields.Nested(ErrorDetail, allow_none=True)


class BatchOut(Schema):
    accepted = fields.Integer()
    rejected = fields.Integer()
    results = fields.List(fields.Nested(BatchItem))


class LedgerEntryOut(Schema):
    id = fields.Integer()
    seq = fields.Integer()
    points = fields.Integer()
    kind = fields.String()
    category = fields.String()
    reason = fields.String()
    rule = fields.String(allow_none=True)
    rules_version = fields.String(allow_none=True)
    event = fields.String(allow_none=True, metadata={"description": "The partner's event id"})
    org = fields.String()
    occurred_at = fields.DateTime()
    created_at = fields.DateTime()
    explanation = fields.Raw(allow_none=True)


class LedgerPage(Schema):
    entries = fields.List(fields.Nested(LedgerEntryOut))
    next_cursor = fields.String(allow_none=True)


class LedgerQuery(Schema):
    class Meta:
        unknown = RAISE

    cursor = fields.String(validate=validate.Regexp(r"^[0-9]{1,19}$"))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


PERIOD = fields.String(
    load_default="week",
    validate=validate.Regexp(
        r"^(week|month|year|all|\d{4}-W\d{2}|\d{4}-\d{2}|\d{4})$",
        error="week, month, year, all, or a period id: 2026-W48, 2026-11, 2026",
    ),
    metadata={"description": "The current week/month/year, all time, or a period's id"},
)
CATEGORY = fields.String(
    load_default="total",
    validate=validate.OneOf(["total", "pioneer", "governance", "volunteer", "other"]),
)


class BoardQuery(Schema):
    class Meta:
        unknown = RAISE

    period = PERIOD
    category = CATEGORY
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 1_000_000))


class BoardLine(Schema):
    rank = fields.Integer(required=True, metadata={"description": "Equal points share a rank"})
    name = fields.String(required=True, metadata={"description": "Masked: 张*华"})
    points = fields.Integer(required=True)


class BoardOut(Schema):
    scope = fields.String(required=True)
    period = fields.String(required=True)
    category = fields.String(required=True)
    archived = fields.Boolean(required=True)
    total = fields.Integer(required=True, metadata={"description": "Members ranked"})
    items = fields.List(fields.Nested(BoardLine), required=True)


class ChildrenQuery(Schema):
    class Meta:
        unknown = RAISE

    period = PERIOD
    category = CATEGORY
    by = fields.String(load_default="points", validate=validate.OneOf(["points", "per_member"]))


class ChildLine(Schema):
    rank = fields.Integer(required=True)
    org = fields.String(required=True)
    points = fields.Integer(required=True)
    active_members = fields.Integer(required=True)
    points_per_member = fields.Float(required=True)


class ChildrenOut(Schema):
    scope = fields.String(required=True)
    period = fields.String(required=True)
    category = fields.String(required=True)
    by = fields.String(required=True)
    items = fields.List(fields.Nested(ChildLine), required=True)


class RanksQuery(Schema):
    class Meta:
        unknown = RAISE

    period = fields.List(
        PERIOD, metadata={"description": "Repeat; default: week, month, year, all"}
    )
    category = fields.List(CATEGORY, metadata={"description": "Repeat; default: every category"})


class RankOut(Schema):
    scope = fields.String(required=True)
    period = fields.String(required=True)
    category = fields.String(required=True)
    rank = fields.Integer(required=True)
    points = fields.Integer(required=True)
    total = fields.Integer(required=True)
    above = fields.Nested(BoardLine, allow_none=True, required=True)
    below = fields.Nested(BoardLine, allow_none=True, required=True)


class RanksOut(Schema):
    ref = fields.String(required=True)
    boards = fields.List(fields.Nested(RankOut), required=True)
