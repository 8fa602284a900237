"""Rewards: the catalogue, redemption by a member, pickup and cancellation at the station.

A partner redeems for the members it knows; it confirms pickups at the stations it serves
(the organisations its key may report for). Either may cancel a pending redemption. A
redemption another partner cannot reach is answered 404, as if it did not exist.
"""

from __future__ import annotations

import base64

from flask import g
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy import select

from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..extensions import db
from ..models import PartnerMember, Redemption, RedemptionStatus
from ..models.base import utcnow
from ..services import rewards
from ..services.members import find_member
from ..services.rules import current_rules
from .auth import SECURITY, require_partner
from .body import body_doc, json_body, load
from .reward_schemas import (
    RedemptionIn,
    RedemptionOut,
    RedemptionsOut,
    RedemptionsQuery,
    RewardsOut,
    RewardsQuery,
)
from .schemas import ErrorOut

blp = Blueprint("rewards", __name__, description="Rewards catalogue and redemptions")
blp.before_request(require_partner)
_REDEMPTION_IN = RedemptionIn()
_REDEMPTION_OUT = RedemptionOut()


@blp.route("/rewards", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(RewardsQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, RewardsOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(403, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def get_rewards(org: str, member: str | None = None):
    """The rewards offered at ``org`` and below it: cost, stock left, limits, eligibility;
    with ``member``, whether that member may redeem each now and, if not, why."""
    if not g.partner.may_report_for(org):
        raise Forbidden(f"this key may not read {org}", {"org": org}, "org_not_allowed")
    rules = current_rules()
    local = utcnow().astimezone(rules.tz)
    who = find_member(g.partner, member) if member else None
    offered = rewards.catalogue(rules, org)
    counters = rewards.Counters(offered, local, who.id if who else None)
    views = rewards.member_views(rules, offered, who, local, counters) if who else {}
    out = []
    for r in offered:
        item = _reward_out(r, counters.stock_left(r))
        view = views.get(rewards.reward_key(r))
        if view is not None:
            item["member"] = _member_out(view)
        out.append(item)
    return {"org": org, "rewards": out}


def _reward_out(r, stock_left: int | None) -> dict:
    return {
        "reward": rewards.reward_key(r), "org": r.org, "name": r.name, "name_en": r.name_en,
        "description": r.description, "description_en": r.description_en, "icon": r.icon,
        "cost": r.cost, "stock_left": stock_left,
        "limit": {"per": str(r.limit_per), "count": r.limit_count} if r.limit_count else None,
        "valid_from": r.valid_from, "valid_until": r.valid_until, "sponsor": r.sponsor,
        "pickup_hours": r.pickup_hours,
        "eligibility": {k: v for k, v in (
            ("min_level", r.min_level), ("party_member", r.party_member_only or None),
            ("subtree", r.subtree), ("badge", r.badge), ("industry", r.industry)) if v},
    }  # fmt: skip


def _member_out(view: rewards.MemberView) -> dict:
    refusal = view.refusal
    return {
        "eligible": view.eligible,
        "refusal": None if refusal is None else
        {"code": refusal.code, "message": refusal.message, "details": refusal.details},
        "redeemed": view.redeemed,
    }  # fmt: skip


@blp.route("/members/<ref>/redemptions", methods=["POST"])
@blp.doc(security=SECURITY, **body_doc(RedemptionIn))
@blp.alt_response(201, schema=RedemptionOut, description="Redeemed", success=True)
@blp.alt_response(400, schema=ErrorOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
@blp.alt_response(
    409,
    schema=ErrorOut,
    description="insufficient_points, out_of_stock, limit_reached or not_eligible",
)
@blp.alt_response(422, schema=ErrorOut)
def post_redemption(ref: str):
    """Redeem a reward for the member: the points and one item of stock are taken at once,
    and a code (with its QR image) is returned for pickup at the reward's station before
    ``expires_at``; after that it expires and the points come back."""
    data = load(_REDEMPTION_IN, json_body())
    member = find_member(g.partner, ref)
    rules = current_rules()
    reward = rewards.find_reward(rules, data["reward"])
    try:
        redemption, balance = rewards.redeem(rules, member, reward)
    except Conflict:
        db.session.rollback()  # what the refused redemption flushed is undone
        raise
    db.session.commit()
    return _REDEMPTION_OUT.dump(_redemption_out(redemption, balance, qr=True)), 201


@blp.route("/members/<ref>/redemptions", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(RedemptionsQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, RedemptionsOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def get_redemptions(ref: str, limit: int, status: str | None = None):
    """The member's redemptions, newest first."""
    member = find_member(g.partner, ref)
    query = select(Redemption).where(Redemption.member_id == member.id)
    if status:
        query = query.where(Redemption.status == status)
    items = db.session.scalars(query.order_by(Redemption.id.desc()).limit(limit))
    return {"items": [_redemption_out(r) for r in items]}


@blp.route("/redemptions/<code>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, RedemptionOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
def get_redemption(code: str):
    """A redemption, for the member's partner or a partner serving its station."""
    return _redemption_out(_reachable(code), qr=True)


@blp.route("/redemptions/<code>/qr.png", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.alt_response(200, description="The code as a QR image", success=True,
                  content_type="image/png")  # fmt: skip
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
def get_redemption_qr(code: str):
    """The redemption code as a PNG QR image, to show at the station."""
    r = _reachable(code)
    return rewards.qr_png(r.code), 200, {"Content-Type": "image/png", "Cache-Control": "private"}


@blp.route("/redemptions/<code>/confirm", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.response(200, RedemptionOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(403, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
@blp.alt_response(409, schema=ErrorOut, description="not_pending: picked up, cancelled or expired")
def post_confirm(code: str):
    """Confirm pickup at the station (a partner serving the reward's station)."""
    r = _reachable(code)
    rewards.check_station(g.partner, r)
    rewards.confirm(r, f"partner:{g.partner.code}")
    db.session.commit()  # the pickup, or the refund of one found expired
    if r.status != RedemptionStatus.CONFIRMED:
        raise rewards.not_pending(r)
    return _redemption_out(r)


@blp.route("/redemptions/<code>/cancel", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.response(200, RedemptionOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
@blp.alt_response(409, schema=ErrorOut, description="not_pending: picked up, cancelled or expired")
def post_cancel(code: str):
    """Cancel before pickup: the points come back (a ``refund`` entry), and the stock."""
    r = _reachable(code)
    balance = rewards.refund(r, RedemptionStatus.CANCELLED, f"partner:{g.partner.code}")
    db.session.commit()
    return _redemption_out(r, balance)


def _reachable(code: str) -> Redemption:
    """The redemption, if this partner knows its member or serves its station; else 404."""
    if not 4 <= len(code) <= 16 or not code.isalnum():
        raise Invalid("a redemption code has 4 to 16 letters and digits", {"code": code})
    r = rewards.find_redemption(code)
    knows = db.session.scalar(
        select(PartnerMember.id)
        .where(PartnerMember.partner_id == g.partner.id, PartnerMember.member_id == r.member_id)
        .limit(1)
    )
    if knows is None and not rewards.may_handle(g.partner, r):
        raise NotFound(f"no redemption {code!r}", {"code": code}, "unknown_redemption")
    return r


def _redemption_out(r: Redemption, balance: int | None = None, qr: bool = False) -> dict:
    out = {
        "code": r.code, "status": r.status, "reward": r.reward, "name": r.name,
        "org": r.org_code, "cost": r.cost, "created_at": r.created_at,
        "expires_at": r.expires_at, "decided_at": r.decided_at,
    }  # fmt: skip
    if balance is not None:
        out["balance"] = balance
    if qr:
        out["qr"] = "data:image/png;base64," + base64.b64encode(rewards.qr_png(r.code)).decode()
    return out
