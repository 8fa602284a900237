"""What ``rules check`` does beyond structure: run the files' examples, and warn about rules
that are legal but risky (hours with no daily cap, rules no example covers, rules shadowed by
an earlier ``stop: true``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, Reporter, Severity
from .evaluate import evaluate
from .events import EventDataError, validate_event_data
from .model import EmergencyFacts, EventFacts, MemberFacts, Per, Rule
from .periods import period_key
from .ruleset import ancestors
from .source import Pos

if TYPE_CHECKING:
    from .ruleset import RuleSet

_HOURLY_UNITS = ("hours", "minutes")


def run_checks(ruleset: RuleSet, diags: list[Diagnostic]) -> int:
    """Run every example and add warnings; return how many examples ran."""
    covered: set[tuple[str, str]] = set()
    ran = 0
    for f in ruleset.files.values():
        rep = Reporter(f.path, diags)
        for example in f.examples:
            ran += 1
            _run_example(ruleset, f.org, example, rep, covered)
    _warn(ruleset, covered, diags)
    return ran


def _run_example(ruleset, file_org, example, rep, covered) -> None:
    raw = example.raw
    pos = Pos(example.where.line, example.where.col)
    label = f"example {example.name!r}"
    ev = raw["event"]
    org = ev.get("org", file_org)
    if file_org not in ancestors(org):
        rep.error(pos, f"{label}: event org {org!r} is not {file_org} or below it")
        return
    etype = ruleset.event_types.get(ev["type"])
    if etype is None:
        rep.error(pos, f"{label}: event type {ev['type']!r} is not declared")
        return
    try:
        data = validate_event_data(etype, ev.get("data", {}), ruleset.tz)
    except EventDataError as exc:
        rep.error(pos, f"{label}: event data does not fit {etype.name}: {exc}")
        return
    occurred = ev["occurred_at"]
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=ruleset.tz)
    m = raw.get("member", {})
    member = MemberFacts(
        party_member=m.get("party_member", False),
        industry=m.get("industry"),
        level=m.get("level"),
        primary_org=(m.get("orgs") or [org])[0],
        orgs=tuple(m.get("orgs") or [org]),
        tags=frozenset(m.get("tags", ())),
    )
    event = EventFacts(ev["type"], org, occurred, data, ev.get("partner", ""))
    ctx = raw.get("context", {})
    emergency = (
        EmergencyFacts("示例应急", ctx.get("emergency_kind", "")) if ctx.get("emergency") else None
    )
    counters = {}
    local = occurred.astimezone(ruleset.tz)
    rules = ruleset.rules_for(org, member.industry, event.type)
    pools = {cap.pool: cap.bucket for r in rules for cap in r.caps if cap.pool}
    for c in raw.get("counters", ()):
        if "pool" in c:
            if c["pool"] not in pools:
                rep.error(
                    pos,
                    f"{label}: counters name pool {c['pool']!r}, which no rule "
                    f"applying to {event.type} events at {org} uses",
                )
                return
            bucket = pools[c["pool"]]
        else:
            rule = next((r for r in rules if r.id == c["rule"]), None)
            if rule is None:
                rep.error(
                    pos,
                    f"{label}: counters name rule {c['rule']!r}, which does not "
                    f"apply to {event.type} events at {org}",
                )
                return
            bucket = rule.key
        counters[(bucket, period_key(Per(c["per"]), local))] = (
            c.get("points", 0),
            c.get("count", 0),
        )
    result = evaluate(
        ruleset, event, member, counters, emergency, confirming=raw.get("verified", False)
    )
    for award in result.awards:
        covered.add((award.org, award.rule_id))
    for err in result.errors:
        rep.error(pos, f"{label}: a rule failed on this event: {err}")
    expect = raw["expect"]
    problems = []
    if "status" in expect and expect["status"] != result.status.value:
        problems.append(f"status {result.status.value}, expected {expect['status']}")
    if "points" in expect and expect["points"] != result.points:
        problems.append(f"{result.points} points, expected {expect['points']}")
    for rid, want in expect.get("rules", {}).items():
        # "id" names every rule with that id; "org:id" one tree's rule exactly
        named = [a for a in result.awards if (a.rule if ":" in rid else a.rule_id) == rid]
        got = sum(a.points for a in named)
        if not named:
            problems.append(f"rule {rid!r} did not match, expected {want} points")
        elif got != want:
            problems.append(f"rule {rid!r} gave {got} points, expected {want}")
    if problems:
        how = "; ".join(a.reason for a in result.awards) or "no rule matched"
        rep.error(pos, f"{label} failed: {'; '.join(problems)} [{how}]")


def _warn(ruleset: RuleSet, covered: set[tuple[str, str]], diags: list[Diagnostic]) -> None:
    for f in ruleset.files.values():
        rep = Reporter(f.path, diags)
        for rule in f.own_rules:
            pos = Pos(rule.where.line, rule.where.col)
            if _hourly_without_daily_cap(ruleset, rule):
                rep.warn(
                    pos,
                    f"rule {rule.id!r} awards points per hour of duty with no daily "
                    "points cap (worker safety): add caps: [{per: day, points: N}]",
                )
            if (rule.org, rule.id) not in covered:
                rep.warn(pos, f"rule {rule.id!r} is not covered by any example")
    reported: set[tuple[str, str]] = set()
    for org, chain in ruleset.chains.items():
        _warn_shadowed(org, chain, diags, reported)


def _hourly_without_daily_cap(ruleset: RuleSet, rule: Rule) -> bool:
    hourly = any(
        (spec := ruleset.event_types[t].fields.get(name)) is not None and spec.unit in _HOURLY_UNITS
        for name in rule.points.data_fields
        for t in rule.types
    )
    return hourly and not any(c.per is Per.DAY and c.points is not None for c in rule.caps)


def _warn_shadowed(org: str, chain, diags, reported) -> None:
    stoppers: list[Rule] = []
    for rule in chain:
        for s in stoppers:
            if rule.types <= s.types and (rule.where, s.key) not in reported:
                reported.add((rule.where, s.key))
                diags.append(
                    Diagnostic(
                        rule.where.path,
                        rule.where.line,
                        rule.where.col,
                        f"rule {rule.id!r} never applies to events at {org}: rule {s.id!r} "
                        f"({s.where.path}:{s.where.line}) matches them first and has stop: true",
                        severity=Severity.WARNING,
                    )
                )
                break
        if (
            rule.stop
            and rule.when is None
            and not rule.emergency_only
            and not (rule.active_from or rule.active_until)
        ):
            stoppers.append(rule)
