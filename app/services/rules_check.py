"""Check a candidate version of one organisation's rules file without activating it.

The rules directory in force is copied to a temporary directory, the candidate is written
there as ``<org>.yaml`` and the copy is loaded: the findings say file, line and column. When it
loads, the stored events of the last ``DAYS`` days are replayed under it (``simulate``), so the
organisation sees what would change. Nothing in force changes: publishing is a separate step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ..engine import RuleSet, load_ruleset
from ..engine.diagnostics import Diagnostic, Severity
from ..extensions import db
from ..models import ConsoleUser, Member
from .boards.keys import mask_name
from .console_users import audit
from .rules import current_rules, registry
from .simulate import Simulation, simulate

MAX_BYTES = 256 * 1024
DAYS = 28


@dataclass
class Check:
    """What checking a candidate gave: every finding (paths shown as file names), and the
    simulation when the candidate loads."""

    org: str
    filename: str
    text: str
    diagnostics: list[Diagnostic]
    simulation: Simulation | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    rule_names: dict[str, str] = dataclasses.field(default_factory=dict)  # rule key -> name
    member_names: dict[int, str] = dataclasses.field(default_factory=dict)  # masked

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    def listing(self) -> list[tuple[int, str, list[Diagnostic]]]:
        """The candidate's lines, numbered from 1, each with the findings about it."""
        mine: dict[int, list[Diagnostic]] = {}
        for d in self.diagnostics:
            if d.path == self.filename:
                mine.setdefault(d.line, []).append(d)
        return [(n, line, mine.get(n, [])) for n, line in enumerate(self.text.split("\n"), 1)]


def own_file(org: str) -> str | None:
    """The text of ``org``'s rules file in force, or None when it has none."""
    path = Path(registry().directory) / f"{org}.yaml"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def check_candidate(org: str, text: str, by: ConsoleUser | None = None,
                    today: dt.date | None = None) -> Check:  # fmt: skip
    """Load the rules in force with ``text`` as ``org``'s file and, when that loads, simulate
    the last ``DAYS`` days under it; audited as ``rules.check`` (the caller commits)."""
    filename = f"{org}.yaml"
    reg = registry()
    current = current_rules()
    with tempfile.TemporaryDirectory(prefix="pp-rules-check-") as tmp:
        directory = os.path.join(tmp, "rules")
        shutil.copytree(reg.directory, directory)
        Path(directory, filename).write_text(text, encoding="utf-8")
        result = load_ruleset(directory, reg.timezone)
    found = [dataclasses.replace(d, path=os.path.basename(d.path)) for d in result.diagnostics]
    # the candidate's own findings first, then by file and line
    found.sort(key=lambda d: (d.path != filename, d.path, d.line, d.col))
    check = Check(org, filename, text, found)
    if result.ruleset is not None:
        today = today or dt.datetime.now(current.tz).date()
        check.start, check.end = today - dt.timedelta(days=DAYS), today
        check.simulation = simulate(current, result.ruleset, check.start, check.end)
        check.rule_names = {**_rule_names(current), **_rule_names(result.ruleset)}
        check.member_names = _masked_names(check.simulation)
    audit(by, org, "rules.check", f"rules:{org}", None, {
        "errors": len(check.errors),
        "warnings": len(check.warnings),
        "candidate": result.ruleset.version if result.ruleset is not None else None,
    })  # fmt: skip
    return check


def _rule_names(ruleset: RuleSet) -> dict[str, str]:
    return {r.key: r.name for f in ruleset.files.values() for r in f.own_rules}


def _masked_names(sim: Simulation) -> dict[int, str]:
    ids = {row["member_id"] for row in sim.members}
    for board in sim.boards:
        ids.update(m for m, _ in board["before"] + board["after"])
    if not ids:
        return {}
    rows = db.session.execute(select(Member.id, Member.display_name).where(Member.id.in_(ids)))
    return {member_id: mask_name(name) for member_id, name in rows}
