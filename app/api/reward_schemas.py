"""Schemas of the rewards API: the catalogue, redemptions, and what members have earned."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .schemas import ErrorDetail


class RewardsQuery(Schema):
    org = fields.String(
        required=True,
        validate=validate.Length(1, 200),
        metadata={"description": "Rewards offered at this organisation and below it"},
    )
    member = fields.String(
        validate=validate.Length(1, 128),
        metadata={"description": "Your member's reference: add whether they may redeem each"},
    )


class LimitOut(Schema):
    per = fields.String()
    count = fields.Integer()


class MemberEligibility(Schema):
    eligible = fields.Boolean(metadata={"description": "Whether a redemption would succeed now"})
    refusal = fields.Nested(ErrorDetail, allow_none=True, metadata={"description": "Why not"})
    redeemed = fields.Integer(metadata={"description": "Redemptions counting against the limit"})


class RewardOut(Schema):
    reward = fields.String(metadata={"description": "The key to redeem it: <org>:<id>"})
    org = fields.String()
    name = fields.String()
    name_en = fields.String()
    description = fields.String()
    description_en = fields.String()
    icon = fields.String()
    cost = fields.Integer()
    stock_left = fields.Integer(allow_none=True, metadata={"description": "null: unlimited"})
    limit = fields.Nested(LimitOut, allow_none=True)
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    sponsor = fields.String(allow_none=True)
    pickup_hours = fields.Integer()
    eligibility = fields.Dict()
    member = fields.Nested(MemberEligibility)


class RewardsOut(Schema):
    org = fields.String()
    rewards = fields.List(fields.Nested(RewardOut))


class RedemptionIn(Schema):
    reward = fields.String(
        required=True,
        validate=validate.Length(1, 300),
        metadata={"description": "The reward's key, <org>:<id>, as the catalogue gives it"},
    )


class RedemptionOut(Schema):
    code = fields.String(metadata={"description": "Shown (or scanned) at the station"})
    status = fields.String(metadata={"enum": ["pending", "confirmed", "cancelled", "expired"]})
    reward = fields.String()
    name = fields.String()
    org = fields.String(metadata={"description": "Where to pick it up"})
    cost = fields.Integer()
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    balance = fields.Integer(metadata={"description": "The member's balance after this"})
    qr = fields.String(metadata={"description": "The code as a QR image (data: URI, PNG)"})


class RedemptionsQuery(Schema):
    status = fields.String(validate=validate.OneOf(["pending", "confirmed", "cancelled",
                                                    "expired"]))  # fmt: skip
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class RedemptionsOut(Schema):
    items = fields.List(fields.Nested(RedemptionOut))
