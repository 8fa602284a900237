"""Levels, badges, rewards and expiry: the parts of a rules file that say what points turn
into. Structure was checked by ``format.py``; here the meaning: ladders rise from 0, badge
conditions fit their kind, windows are not inverted, rewards name levels and badges that exist.
"""

from __future__ import annotations

from . import badges as badge_kinds
from .diagnostics import Diagnostic, Reporter
from .model import Badge, Expiry, Level, Per, Reward, Where
from .ruleset import RuleSet
from .source import Pos


def _where(src, pos: Pos) -> Where:
    return Where(src.path, pos.line, pos.col)


def load_levels(src, data, org) -> tuple[Level, ...]:
    levels = []
    ids: set[str] = set()
    prev = None
    raw_list = data.get("levels", ())
    for i, lv in enumerate(raw_list):
        pos = lv.pos
        if lv["id"] in ids:
            src.rep.error(pos, f"duplicate level id {lv['id']!r}")
            continue
        ids.add(lv["id"])
        if i == 0 and lv["min_points"] != 0:
            src.rep.error(lv.val_pos["min_points"], "the first level must start at min_points: 0")
        if prev is not None and lv["min_points"] <= prev:
            src.rep.error(
                lv.val_pos["min_points"],
                f"level {lv['id']!r} needs more points than the level before it ({prev})",
            )
        prev = lv["min_points"]
        levels.append(
            Level(
                lv["id"],
                lv["name"],
                lv.get("name_en", ""),
                lv["min_points"],
                lv.get("bonus", 0),
                lv.get("icon", ""),
                _where(src, pos),
            )
        )
    return tuple(levels)


def load_badges(src, data, org, build) -> tuple[Badge, ...]:
    out = []
    ids: set[str] = set()
    for b in data.get("badges", ()):
        if b["id"] in ids:
            src.rep.error(b.val_pos["id"], f"duplicate badge id {b['id']!r}")
            continue
        ids.add(b["id"])
        cond = b["condition"]
        params = badge_kinds.check_condition(
            cond, b.val_pos["condition"], src.rep, build.event_types
        )
        if params is None:
            continue
        repeat = b.get("repeat", False)
        every = repeat.get("every") if isinstance(repeat, dict) else None
        out.append(
            Badge(
                id=b["id"],
                org=org,
                name=b["name"],
                name_en=b.get("name_en", ""),
                description=b.get("description", ""),
                description_en=b.get("description_en", ""),
                icon=b.get("icon", ""),
                kind=cond["kind"],
                params=params,
                repeat_every=every,
                repeat_max=repeat.get("max") if isinstance(repeat, dict) else None,
                bonus=b.get("bonus", 0),
                where=_where(src, b.pos),
            )
        )
    return tuple(out)


def load_rewards(src, data, org) -> tuple[Reward, ...]:
    out = []
    ids: set[str] = set()
    for r in data.get("rewards", ()):
        if r["id"] in ids:
            src.rep.error(r.val_pos["id"], f"duplicate reward id {r['id']!r}")
            continue
        ids.add(r["id"])
        valid = r.get("valid", {})
        if valid.get("from") and valid.get("until") and valid["from"] > valid["until"]:
            src.rep.error(
                r.val_pos["valid"],
                f"valid window is inverted: from {valid['from']} is after until {valid['until']}",
            )
            continue
        stock = r.get("stock", {})
        per_period = stock.get("per_period", {})
        limit = r.get("limit", {})
        elig = r.get("eligibility", {})
        sponsor = r.get("sponsor", {})
        budget = sponsor.get("budget", {})
        if budget.get("yuan") and not sponsor.get("yuan_per_item"):
            src.rep.error(
                r.val_pos["sponsor"],
                "a budget in yuan needs yuan_per_item (what one redemption costs the sponsor)",
            )
            continue
        out.append(
            Reward(
                id=r["id"],
                org=org,
                name=r["name"],
                name_en=r.get("name_en", ""),
                description=r.get("description", ""),
                description_en=r.get("description_en", ""),
                cost=r["cost"],
                stock_total=stock.get("total"),
                stock_per=Per(per_period["per"]) if per_period else None,
                stock_per_count=per_period.get("count"),
                limit_per=Per(limit["per"]) if limit else None,
                limit_count=limit.get("count"),
                min_level=elig.get("min_level"),
                party_member_only=elig.get("party_member", False),
                subtree=org if elig.get("subtree") is True else (elig.get("subtree") or None),
                badge=elig.get("badge"),
                industry=elig.get("industry"),
                valid_from=valid.get("from"),
                valid_until=valid.get("until"),
                sponsor=sponsor.get("name"),
                budget_per=Per(budget["per"]) if budget else None,
                budget_points=budget.get("points"),
                budget_yuan=budget.get("yuan"),
                yuan_per_item=sponsor.get("yuan_per_item"),
                pickup_hours=r.get("pickup_hours"),
                icon=r.get("icon", ""),
                where=_where(src, r.pos),
            )
        )
    return tuple(out)


def load_expiry(src, data) -> Expiry | None:
    e = data.get("expiry")
    if not e:
        return None
    if e["policy"] == "after_months" and "months" not in e:
        src.rep.error(data.val_pos["expiry"], "expiry policy after_months needs 'months'")
        return None
    return Expiry(e["policy"], e.get("months"), e.get("warn_days", 30))


def check_references(ruleset: RuleSet, diags: list[Diagnostic]) -> None:
    """Rewards may name a level of the ladder in force and a badge of their tree."""
    for f in ruleset.files.values():
        rep = Reporter(f.path, diags)
        ladder = {lv.id for lv in ruleset.levels_for(f.org)}
        badges = {b.id for b in ruleset.badges_for(f.org)}
        for r in f.rewards:
            pos = Pos(r.where.line, r.where.col)
            if r.min_level and r.min_level not in ladder:
                known = ", ".join(sorted(ladder)) or "no levels are defined here"
                rep.error(
                    pos,
                    f"reward {r.id!r}: min_level {r.min_level!r} is not a level of "
                    f"the ladder in force for {f.org} ({known})",
                )
            if r.badge and r.badge not in badges:
                rep.error(
                    pos, f"reward {r.id!r}: badge {r.badge!r} is not defined at {f.org} or above"
                )
            if r.industry and f"ind.{r.industry}" not in ruleset.files:
                rep.warn(
                    pos,
                    f"reward {r.id!r}: no industry committee ind.{r.industry} has a rules file; "
                    "is the industry spelled right?",
                )
