"""A member's standing as pages and the API show it: level, the way to the next, badges."""

from __future__ import annotations

from sqlalchemy import func, select

from ..engine import RuleSet
from ..extensions import db
from ..models import BadgeGrant, Member
from .achievements import badges_in_force
from .rewards import facts_of


def level_info(rules: RuleSet, member: Member) -> dict | None:
    ladder = rules.levels_for(member.primary_org.code)
    if not ladder:
        return None
    ids = [lv.id for lv in ladder]
    at = ids.index(member.level) if member.level in ids else 0
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
