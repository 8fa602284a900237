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


class PeriodTotals(Schema):
    start = fields.String()
    total = fields.Integer()
    by_category = fields.Dict(keys=fields.String(), values=fields.Integer())


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
    this_week = fields.Nested(PeriodTotals)
    this_month = fields.Nested(PeriodTotals)


class AwardOut(Schema):
    rule = fields.String()
    points = fields.Integer()
    reason = fields.String()
    pending = fields.Boolean()


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
