"""Turn an award's structured explanation into a sentence a rider can read (zh-CN or en).

The evaluator stores explanations as data (``Explanation``) so the ledger can keep them and the
rider's page can show them in either language; ``render`` is the only place with the wording.
"""

from __future__ import annotations

from typing import NamedTuple

from .expr import UNIT_TOKEN, format_number

_UNITS = {
    "zh": {
        "hours": " 小时",
        "minutes": " 分钟",
        "km": " 公里",
        "count": " 个",
        "people": " 人",
        "yuan": " 元",
    },
    "en": {
        "hours": " h",
        "minutes": " min",
        "km": " km",
        "count": "",
        "people": " people",
        "yuan": " yuan",
    },
}
_PER = {
    "zh": {"day": "每日", "week": "每周", "month": "每月", "year": "每年", "ever": "累计"},
    "en": {
        "day": "daily",
        "week": "weekly",
        "month": "monthly",
        "year": "yearly",
        "ever": "lifetime",
    },
}


# NamedTuples rather than frozen dataclasses: one is built for every award, and a tuple is
# several times cheaper to construct.
class CapNote(NamedTuple):
    """How one cap treated an award: its limit, what was used before, what was left after."""

    per: str
    kind: str  # "points" or "count"
    limit: int
    used_before: int
    left_after: int
    cut: bool  # the award was reduced (points) or refused (count) by this cap


class Explanation(NamedTuple):
    rule: str
    name: str
    name_en: str
    formula: str  # the points expression with the event's values, e.g. "5 × min(3 h, 8)"
    constant: bool  # the rule awards a fixed number of points
    value: int  # points before caps (after the emergency multiplier and rounding)
    points: int  # points awarded
    multiplier: float | None = None
    emergency: str | None = None
    caps: tuple[CapNote, ...] = ()
    pending: bool = False
    clamped: str | None = None  # "negative" or "maximum" when the result was out of range

    def as_dict(self) -> dict:
        out = {
            "rule": self.rule,
            "name": self.name,
            "name_en": self.name_en,
            "formula": self.formula,
            "constant": self.constant,
            "value": self.value,
            "points": self.points,
        }
        if self.multiplier is not None:
            out["multiplier"] = self.multiplier
            out["emergency"] = self.emergency
        if self.caps:
            out["caps"] = [
                {
                    "per": c.per,
                    "kind": c.kind,
                    "limit": c.limit,
                    "used_before": c.used_before,
                    "left_after": c.left_after,
                    "cut": c.cut,
                }
                for c in self.caps
            ]
        if self.pending:
            out["pending"] = True
        if self.clamped:
            out["clamped"] = self.clamped
        return out


def render(e: Explanation, lang: str = "zh") -> str:
    """One line: what the rule is, how the points were computed, which caps applied."""
    zh = not lang.startswith("en")
    name = e.name if zh or not e.name_en else e.name_en
    unit = " 分" if zh else " points"
    sep = "：" if zh else ": "
    if e.pending:
        if zh:
            return f"{name}{sep}待组织确认（确认后约 {e.value} 分）"
        return f"{name}{sep}waiting for confirmation (about {e.value} points once confirmed)"
    formula = e.formula
    if "[[" in formula:
        for key, word in _UNITS["zh" if zh else "en"].items():
            formula = formula.replace(UNIT_TOKEN.format(key), word)
    if (e.constant or formula == str(e.value)) and e.multiplier is None:
        text = f"{name}{sep}{e.value}{unit}"
    else:
        text = f"{name}{sep}{formula}"
        if e.multiplier is not None:
            text += f" × {format_number(e.multiplier)}"
        text += f" = {e.value}{unit}"
    notes = []
    if e.multiplier is not None:
        notes.append(f"应急加倍：{e.emergency}" if zh else f"emergency: {e.emergency}")
    if e.clamped == "negative":
        notes.append("结果为负，按 0 计" if zh else "negative result counted as 0")
    if e.clamped == "maximum":
        notes.append("超出单次上限" if zh else "over the per-award maximum")
    for c in e.caps:
        notes.append(_cap_note(c, zh))
    if e.points != e.value:
        notes.append(f"实得 {e.points} 分" if zh else f"{e.points} points awarded")
    if notes:
        text += ("（" + "；".join(notes) + "）") if zh else (" (" + "; ".join(notes) + ")")
    return text


def _cap_note(c: CapNote, zh: bool) -> str:
    per = _PER["zh" if zh else "en"][c.per]
    if c.kind == "count":
        if zh:
            return f"{per}限 {c.limit} 次，" + ("已达上限" if c.cut else f"还可 {c.left_after} 次")
        return f"{per} limit {c.limit} times: " + ("reached" if c.cut else f"{c.left_after} left")
    if zh:
        head = f"{per}上限 {c.limit} 分，"
        return head + ("已达上限" if c.cut and c.left_after == 0 else f"剩余 {c.left_after} 分")
    head = f"{per} cap {c.limit}: "
    return head + ("reached" if c.cut and c.left_after == 0 else f"{c.left_after} left")
