"""Simulate a candidate rule set: replay the stored events of a date range under it, write
nothing, and say what would change — points per rule before and after, the members most
affected, and how the top of each organisation's board for the range would move.

Events are replayed per member in the order they happened, each with the member's facts
(industry, party membership, tags, organisations) and the emergency in force for its region
then. An event an organisation confirmed is scored as confirmed (what waits for verification
counts); a pending or rejected one only with the rules that need no verification; duplicates
are left out. Cap counters start at zero at the start of the range, so a day, week or month cap
that straddles it is checked against the range's own events only: pick ranges that start on a
period boundary (a Monday, the 1st of a month) to compare like with like.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from ..engine import EventFacts, MemberFacts, RuleSet, add_counters, evaluate
from ..engine.events import EventDataError, convert_field, validate_event_data
from ..engine.ruleset import ancestors
from ..extensions import db
from ..models import Emergency, Event, EventStatus, LedgerEntry, LedgerKind, Member, Partner
from .ingest import emergency_at
from .rewards import facts_of

BATCH = 2_000
TOP = 10


@dataclass
class Simulation:
    current_version: str
    candidate_version: str
    events: int = 0
    by_rule_before: Tally = field(default_factory=Tally)  # rule key -> points
    by_rule_after: Tally = field(default_factory=Tally)
    members: list[dict] = field(default_factory=list)  # most affected first
    boards: list[dict] = field(default_factory=list)  # scopes whose top changes

    @property
    def before(self) -> int:
        return sum(self.by_rule_before.values())

    @property
    def after(self) -> int:
        return sum(self.by_rule_after.values())

    def rules(self) -> list[dict]:
        """Every rule with points before or after, the biggest change first."""
        keys = set(self.by_rule_before) | set(self.by_rule_after)
        rows = [
            {"rule": k, "before": self.by_rule_before[k], "after": self.by_rule_after[k]}
            for k in keys
        ]
        return sorted(rows, key=lambda r: (-abs(r["after"] - r["before"]), r["rule"]))


def _local_bounds(rules: RuleSet, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.combine(start, dt.time(), tzinfo=rules.tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=rules.tz),
    )


def simulate(current: RuleSet, candidate: RuleSet, start: dt.date, end: dt.date,
             on_progress: Callable[[int, int], None] | None = None,
             top: int = TOP) -> Simulation:  # fmt: skip
    """Replay the events that happened from ``start`` to ``end`` (local dates, inclusive)."""
    sim = Simulation(current.version, candidate.version)
    lo, hi = _local_bounds(candidate, start, end)
    where = (
        Event.occurred_at >= lo,
        Event.occurred_at < hi,
        Event.status != EventStatus.DUPLICATE,
    )
    total = db.session.scalar(select(db.func.count()).select_from(Event).where(*where))
    emergencies = list(db.session.scalars(select(Emergency)))
    partners = dict(db.session.execute(select(Partner.id, Partner.code)).all())
    member_before: Tally = Tally()
    member_after: Tally = Tally()
    scope_before: dict[str, Tally] = {}
    scope_after: dict[str, Tally] = {}
    counters: dict[int, dict] = {}
    last_member = 0
    done = 0
    while True:
        # members in id order, a batch of members' events at a time, each member's in time order
        ids = list(
            db.session.scalars(
                select(Event.member_id)
                .where(*where, Event.member_id > last_member)
                .group_by(Event.member_id)
                .order_by(Event.member_id)
                .limit(max(1, BATCH // 10))
            )
        )
        if not ids:
            break
        last_member = ids[-1]
        events = list(
            db.session.scalars(
                select(Event)
                .where(*where, Event.member_id.in_(ids))
                .order_by(Event.member_id, Event.occurred_at, Event.id)
            )
        )
        facts = {
            m.id: facts_of(m) for m in db.session.scalars(select(Member).where(Member.id.in_(ids)))
        }
        before = _awarded(events)
        for event in events:
            mine = counters.setdefault(event.member_id, {})
            partner = partners.get(event.partner_id, "")
            points_by_rule = score_event(
                candidate, event, facts[event.member_id], mine, emergencies, partner
            )
            old = before.get(event.id, {})
            sim.by_rule_before.update(old)
            sim.by_rule_after.update(points_by_rule)
            b, a = sum(old.values()), sum(points_by_rule.values())
            member_before[event.member_id] += b
            member_after[event.member_id] += a
            for scope in ancestors(event.org_code):
                scope_before.setdefault(scope, Tally())[event.member_id] += b
                scope_after.setdefault(scope, Tally())[event.member_id] += a
            sim.events += 1
        counters.clear()  # the next batch is other members
        done += len(events)
        if on_progress:
            on_progress(done, total)
    sim.members = _most_affected(member_before, member_after, top)
    sim.boards = _board_changes(scope_before, scope_after, top)
    return sim


def _awarded(events: list[Event]) -> dict[int, Tally]:
    """What these events were credited in the ledger, by event and rule."""
    out: dict[int, Tally] = {}
    rows = db.session.execute(
        select(LedgerEntry.event_id, LedgerEntry.rule, LedgerEntry.points).where(
            LedgerEntry.event_id.in_([e.id for e in events]),
            LedgerEntry.kind == LedgerKind.AWARD,
        )
    )
    for event_id, rule, points in rows:
        out.setdefault(event_id, Tally())[rule] += points
    return out


def score_event(rules: RuleSet, event: Event, member: MemberFacts, counters: dict,
           emergencies: list[Emergency], partner: str) -> Tally:  # fmt: skip
    """What ``event`` earns per rule under ``rules`` (counters move on): as confirmed when an
    organisation confirmed it, with only the rules needing no verification otherwise."""
    facts = EventFacts(event.type, event.org_code, event.occurred_at, stored_data(rules, event),
                       partner)  # fmt: skip
    emergency = emergency_at(emergencies, event.org_code, event.occurred_at)
    out: Tally = Tally()
    first = evaluate(rules, facts, member, counters, emergency)
    add_counters(counters, first.counters)
    for a in first.awards:
        if not a.pending and a.points > 0:
            out[a.rule] += a.points
    if event.status == EventStatus.AWARDED and any(a.pending for a in first.awards):
        confirmed = evaluate(rules, facts, member, counters, emergency, confirming=True)
        add_counters(counters, confirmed.counters)
        for a in confirmed.awards:
            if a.points > 0:
                out[a.rule] += a.points
    return out


def stored_data(rules: RuleSet, event: Event) -> dict:
    """An event's data as scoring reads it: stored as JSON (date-times as text), given its
    declared types back."""
    etype = rules.event_types.get(event.type)
    data = event.data or {}
    if etype is None:
        return dict(data)
    # it was validated when it arrived: only the date-times stored as text need their type
    # back, unless the type has changed since (then the full check decides)
    out = {}
    for key, value in data.items():
        spec = etype.fields.get(key)
        if spec is None:
            break
        if value is None and not spec.required:
            continue
        if spec.type in ("datetime", "date") and isinstance(value, str):
            try:
                value = convert_field(spec, value, rules.tz)
            except ValueError:
                break
        out[key] = value
    else:
        return out
    try:
        return validate_event_data(etype, data, rules.tz)
    except EventDataError:  # the type changed since: score what was stored
        return dict(data)


def _most_affected(before: Tally, after: Tally, top: int) -> list[dict]:
    rows = [
        {"member_id": m, "before": before[m], "after": after[m], "change": after[m] - before[m]}
        for m in set(before) | set(after)
        if after[m] != before[m]
    ]
    rows.sort(key=lambda r: (-abs(r["change"]), r["member_id"]))
    return rows[:top]


def _ranking(tally: Tally, top: int) -> list[tuple[int, int]]:
    return sorted(((m, p) for m, p in tally.items() if p > 0), key=lambda x: (-x[1], x[0]))[:top]


def _board_changes(before: dict[str, Tally], after: dict[str, Tally], top: int) -> list[dict]:
    """Organisations whose top ``top`` for the range changes (members or order)."""
    out = []
    for scope in sorted(set(before) | set(after), key=lambda s: (s.count("."), s)):
        b, a = _ranking(before.get(scope, Tally()), top), _ranking(after.get(scope, Tally()), top)
        if [m for m, _ in b] != [m for m, _ in a]:
            out.append({"scope": scope, "before": b, "after": a})
    return out
