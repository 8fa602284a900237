"""A member's standing as pages and the API show it: level, the way to the next, badges."""

from __future__ import annotations

from sqlalchemy import func, select

from ..engine import RuleSet
from ..engine.badges import BADGE_KINDS
from ..extensions import db
from ..models import BadgeGrant, Member
from .achievements import badges_in_force
from .rewards import facts_of


def level_info(rules: RuleSet, member: Member) -> dict | None:
    """The member's level on the ladder in force and the way to the next one. The recorded
    level, or the one its lifetime points have reached if that is higher (points written
    without a level check yet, e.g. a ladder whose thresholds were lowered): never lower."""
    ladder = rules.levels_for(member.primary_org.code)
    if not ladder:
        return None
    ids = [lv.id for lv in ladder]
    reached = max(
        (i for i, lv in enumerate(ladder) if lv.min_points <= member.lifetime_points), default=0
    )
    at = max(ids.index(member.level) if member.level in ids else 0, reached)
    level = ladder[at]
    nxt = ladder[at + 1] if at + 1 < len(ladder) else None
    return {
        "id": level.id, "name": level.name, "name_en": level.name_en,
        "min_points": level.min_points, "icon": level.icon,
        "next": None if nxt is None else {
            "id": nxt.id, "name": nxt.name, "name_en": nxt.name_en,
            "min_points": nxt.min_points,
            "points_to_go": max(0, nxt.min_points - member.lifetime_points),
        },
    }  # fmt: skip


def badges_held(rules: RuleSet, member: Member) -> list[dict]:
    """Badges the member holds (grants not withdrawn), the latest first."""
    t = BadgeGrant.__table__
    g = t.c
    latest = (
        select(g.badge, func.count().label("count"), func.max(g.id).label("last"))
        .where(g.member_id == member.id, g.revoked_at.is_(None))
        .group_by(g.badge)
        .subquery()
    )
    rows = db.session.execute(
        select(latest.c.badge, latest.c.count, g.granted_at, g.reason)
        .select_from(latest)
        .join(t, g.id == latest.c.last)
        .order_by(g.granted_at.desc(), g.id.desc())
    )
    defined = {f"{b.org}:{b.id}": b for b in badges_in_force(rules, facts_of(member))}
    out = []
    for badge, count, granted_at, reason in rows:
        b = defined.get(badge)
        out.append({
            "badge": badge, "name": b.name if b else badge, "name_en": b.name_en if b else "",
            "description": b.description if b else "", "icon": b.icon if b else "",
            "count": count, "granted_at": granted_at, "reason": reason,
        })  # fmt: skip
    return out


def badge_progress(rules: RuleSet, member: Member) -> list[dict]:
    """Every badge in force for the member with how far it is: held grants, the value
    measured now, the value the next grant needs (None when none is left or it is a rank
    badge) and the share of the way there (0..1)."""
    out = []
    held = (member.progress or {}).get("b", {})
    for b in badges_in_force(rules, facts_of(member)):
        key = f"{b.org}:{b.id}"
        n = held.get(key, 0)
        kind = BADGE_KINDS[b.kind]
        most = b.repeat_max if b.repeat_every else 1
        value = next_at = None
        share = 1.0 if n else 0.0
        if kind.measure is not None and (not most or n < most):
            value = kind.measure(b.params, member.progress or {}, member.lifetime_points)
            next_at = b.params["at_least"] + n * (b.repeat_every or 0)
            share = max(0.0, min(1.0, value / next_at)) if next_at else 1.0
        out.append({
            "badge": key, "id": b.id, "name": b.name, "name_en": b.name_en,
            "description": b.description, "description_en": b.description_en,
            "icon": b.icon, "kind": b.kind, "held": n, "value": value, "next_at": next_at,
            "share": share, "repeatable": bool(b.repeat_every), "bonus": b.bonus,
        })  # fmt: skip
    return out
