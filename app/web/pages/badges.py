"""Badges: those the member holds, and those still ahead with how far it is."""

from __future__ import annotations

from flask import render_template

from ...services import standing
from ...services.rules import current_rules
from .. import bp
from ..auth import current_member, member_required


@bp.route("/badges")
@member_required
def badges():
    me = current_member()
    rules = current_rules()
    progress = {b["badge"]: b for b in standing.badge_progress(rules, me)}
    held = standing.badges_held(rules, me)
    for b in held:  # what to show next to a held badge: its English text, the next grant
        p = progress.get(b["badge"], {})
        b["description_en"] = p.get("description_en", "")
        b["repeatable"] = p.get("repeatable", False)
        b["next"] = p if p.get("next_at") is not None else None
    earned = {b["badge"] for b in held}
    ahead = [b for b in progress.values() if b["badge"] not in earned]
    ahead.sort(key=lambda b: (b["next_at"] is None, -b["share"]))  # nearest first, rank last
    return render_template("web/badges.html", held=held, ahead=ahead)
