"""Manual adjustments: an organisation adds or takes points by hand, always with a reason.

An adjustment is an ``adjust`` ledger entry of the adjusting user's organisation, written under
the member's row lock. It counts towards lifetime points and the boards like an award (the
ledger's ``EARNING_KINDS``, the boards' ``BOARD_KINDS``) and towards the points of its category,
so a positive one may lift a level or complete a points badge, with their bonuses; a negative
one never takes the balance below zero and never lowers a level. The caller checks that the
member is in the user's subtree and commits (then the boards are updated).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ..engine import Category, RuleSet
from ..errors import Invalid
from ..models import ConsoleUser, LedgerKind, Member
from ..models.base import utcnow
from . import boards, ledger
from .achievements import Achievements, Trigger
from .console_users import audit
from .rewards import facts_of

MAX_POINTS = 10_000
REASON_MIN, REASON_MAX = 5, 500
CATEGORIES = tuple(c.value for c in Category)
INTEGER = re.compile(r"[+-]?[0-9]{1,9}")


@dataclass(frozen=True)
class Adjustment:
    points: int
    reason: str
    category: str


def parse(form) -> tuple[Adjustment | None, dict[str, str]]:
    """Read an adjustment from form fields ``points``, ``reason`` and ``category``: the
    adjustment, or None and, for each field that is wrong, a code saying why: ``points``
    not_integer, zero or too_large; ``reason`` length; ``category`` unknown."""
    errors = {}
    raw = (form.get("points") or "").strip()
    points = int(raw) if INTEGER.fullmatch(raw) else 0
    if not INTEGER.fullmatch(raw):
        errors["points"] = "not_integer"
    elif points == 0:
        errors["points"] = "zero"
    elif abs(points) > MAX_POINTS:
        errors["points"] = "too_large"
    reason = (form.get("reason") or "").strip()
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        errors["reason"] = "length"
    category = form.get("category") or ""
    if category not in CATEGORIES:
        errors["category"] = "unknown"
    if errors:
        return None, errors
    return Adjustment(points, reason, category), {}


def adjust(rules: RuleSet, user: ConsoleUser, member: Member, change: Adjustment,
           now: dt.datetime | None = None) -> dict:  # fmt: skip
    """Append ``change`` to the member's ledger (with the bonuses it brings) and audit it as
    ``member.adjust``; the ``adjust`` entry as written. Raises ``Invalid`` when a deduction
    is larger than the balance (nothing is written)."""
    now = now or utcnow()
    boards.live_boards()  # before anything commits (see boards.live_boards)
    state = ledger.lock_members([member.id])[member.id]
    if state.balance + change.points < 0:
        raise Invalid(f"余额只有 {state.balance} 分，不能扣除 {-change.points} 分",
                      {"balance": state.balance, "points": change.points},
                      "insufficient_points")  # fmt: skip
    before = {"balance": state.balance, "lifetime": state.lifetime, "level": state.level}
    writer = ledger.LedgerWriter(states={member.id: state})
    ach = Achievements(rules, writer, now)
    entry = writer.append(
        member.id,
        change.points,
        LedgerKind.ADJUST,
        org_code=user.org_code,
        category=change.category,
        created_at=now,
        occurred_at=now,
        rules_version=rules.version,
        reason=change.reason,
        explanation={"by": user.username, "reason": change.reason},
    )
    Achievements.add_earned(state, {change.category: change.points})
    if change.points > 0:
        ach.settle(state, facts_of(member), Trigger(user.org_code, now))
    rows = ledger.write(writer, ach.grants, ach.level_changes)
    audit(user, user.org_code, "member.adjust", f"member:{member.id}", before,
          {"balance": state.balance, "lifetime": state.lifetime, "level": state.level,
           "points": change.points, "category": change.category, "reason": change.reason,
           "entry": entry["id"]})  # fmt: skip
    boards.record_after_commit(boards.board_entries(rows, {member.id: member.industry}.get))
    return entry
