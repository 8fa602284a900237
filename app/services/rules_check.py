"""One organisation's rules file, from a new version to the version in force: check, simulate,
publish — the console's steps (the command line has its own for whole directories).

``check_candidate`` loads the files in force with the candidate as ``<org>.yaml``: the findings
say file, line and column. ``simulate_candidate`` (an RQ job, ``jobs.rules``) replays the stored
events of the last ``DAYS`` days under it and says what would change. ``publish_candidate``
makes it the version in force, unless another version was published since it was checked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy import text as sql_text

from ..engine import RuleSet, load_ruleset
from ..engine.diagnostics import Diagnostic, Severity
from ..errors import Conflict, Invalid
from ..extensions import db
from ..models import ConsoleUser, Member
from .boards.keys import mask_name
from .console_users import audit
from .rules import as_directory, current_rules, files_in_force, publish_files, version_in_force
from .simulate import Simulation, simulate

MAX_BYTES = 256 * 1024
DAYS = 28
PUBLISH_LOCK = 7_410_021  # pg_advisory_xact_lock key of publishing


@dataclass
class Check:
    """What checking a candidate gave: every finding (paths shown as file names), and the
    simulation when the candidate loads."""

    org: str
    filename: str
    text: str
    diagnostics: list[Diagnostic]
    base: str = ""  # the version in force it was checked against
    candidate: str | None = None  # the version it would make, when it loads

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
    return files_in_force().get(f"{org}.yaml")


def _with_candidate(org: str, text: str) -> dict[str, str]:
    return files_in_force() | {f"{org}.yaml": text}


def check_candidate(org: str, text: str, by: ConsoleUser | None = None) -> Check:
    """Load the rules in force with ``text`` as ``org``'s file; audited as ``rules.check``
    (the caller commits)."""
    filename = f"{org}.yaml"
    base = version_in_force()
    with as_directory(_with_candidate(org, text)) as directory:
        result = load_ruleset(directory, current_app.config["APP_TIMEZONE"])
    found = [dataclasses.replace(d, path=os.path.basename(d.path)) for d in result.diagnostics]
    # the candidate's own findings first, then by file and line
    found.sort(key=lambda d: (d.path != filename, d.path, d.line, d.col))
    check = Check(org, filename, text, found, base,
                  result.ruleset.version if result.ruleset is not None else None)  # fmt: skip
    audit(by, org, "rules.check", f"rules:{org}", None, {
        "errors": len(check.errors),
        "warnings": len(check.warnings),
        "candidate": check.candidate,
    })  # fmt: skip
    return check


def simulate_candidate(org: str, text: str, today: dt.date | None = None,
                       on_progress=None) -> dict:  # fmt: skip
    """Replay the last ``DAYS`` days under the rules in force with ``text`` as ``org``'s file;
    the report as plain data (a job's result): the simulation, rule names and masked names."""
    with as_directory(_with_candidate(org, text)) as directory:
        result = load_ruleset(directory, current_app.config["APP_TIMEZONE"])
    if result.ruleset is None:
        raise Invalid("the candidate has errors", {"errors": [str(d) for d in result.errors]},
                      "rules_invalid")  # fmt: skip
    current = current_rules()
    today = today or dt.datetime.now(current.tz).date()
    start, end = today - dt.timedelta(days=DAYS), today
    sim = simulate(current, result.ruleset, start, end, on_progress=on_progress)
    names = _masked_names(sim)
    rule_names = _rule_names(result.ruleset) | _rule_names(current)
    return {
        "org": org,
        "current": sim.current_version,
        "candidate": sim.candidate_version,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "events": sim.events,
        "before": sim.before,
        "after": sim.after,
        "rules": [r | {"name": rule_names.get(r["rule"], r["rule"])} for r in sim.rules()],
        "members": [m | {"name": names.get(m["member_id"], "*")} for m in sim.members],
        "boards": [
            {"scope": b["scope"],
             "before": [[names.get(m, "*"), p] for m, p in b["before"]],
             "after": [[names.get(m, "*"), p] for m, p in b["after"]]}
            for b in sim.boards
        ],
    }  # fmt: skip


def publish_candidate(user: ConsoleUser, text: str, base: str, note: str | None) -> RuleSet:
    """Make the rules in force with ``text`` as the user's organisation's file the version in
    force; ``Conflict`` when another version was published since ``base`` was (check again).
    Audited as ``rules.publish``; the caller commits."""
    org = user.org_code
    if db.session.get_bind().dialect.name == "postgresql":  # one publisher at a time
        db.session.execute(sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": PUBLISH_LOCK})
    in_force = version_in_force()
    if in_force != base:
        raise Conflict(f"rules version {in_force} was published after {base} was checked",
                       {"in_force": in_force, "checked": base}, "rules_changed")  # fmt: skip
    ruleset = publish_files(_with_candidate(org, text), user.username, note)
    audit(user, org, "rules.publish", f"rules:{org}", {"version": base},
          {"version": ruleset.version, "note": note})  # fmt: skip
    return ruleset


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
