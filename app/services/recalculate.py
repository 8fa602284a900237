"""Recalculation: re-score stored events under a published rules version, by appending to the
ledger (history is never edited).

For every member with events since a date, under that member's lock: the member's whole event
history is replayed under the new version (so caps, including all-time ones, are counted as the
new rules count them), and for each event since the date whose points per rule differ, the
old award is reversed (a ``reverse`` entry) and the new one credited (an ``award`` entry naming
the new version). The event is then marked with the version, so a second run, or a run that
resumes after an interruption, leaves it alone: members are committed a batch at a time.
Counters are replaced by the replayed ones, badges are re-evaluated (``honours.recheck``) and
the boards get the corrections live.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from ..engine import RuleSet
from ..extensions import db
from ..models import (
    Counter,
    Emergency,
    Event,
    EventStatus,
    LedgerEntry,
    LedgerKind,
    Member,
    Partner,
)
from ..models.base import utcnow
from . import boards, honours, ledger
from .rewards import facts_of
from .simulate import score_event

BATCH = 200
SCORED = (EventStatus.AWARDED, EventStatus.PENDING, EventStatus.NO_MATCH, EventStatus.REJECTED)


@dataclass
class Report:
    version: str
    members: int = 0
    events: int = 0
    changed: int = 0
    reversed_points: int = 0
    credited_points: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def recalculate(rules: RuleSet, since: dt.date, now: dt.datetime | None = None,
                on_batch: Callable[[Report], None] | None = None,
                max_batches: int | None = None) -> Report:  # fmt: skip
    """Re-score the events that happened from ``since`` (local date) on; commits per batch of
    members. ``max_batches`` stops early (a resumable run in parts)."""
    now = now or utcnow()
    start = dt.datetime.combine(since, dt.time(), tzinfo=rules.tz)
    report = Report(rules.version)
    emergencies = list(db.session.scalars(select(Emergency)))
    partners = dict(db.session.execute(select(Partner.id, Partner.code)).all())
    last = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        ids = list(
            db.session.scalars(
                select(Event.member_id)
                .where(
                    Event.occurred_at >= start,
                    Event.status.in_(SCORED),
                    Event.rules_version != rules.version,
                    Event.member_id > last,
                )
                .group_by(Event.member_id)
                .order_by(Event.member_id)
                .limit(BATCH)
            )
        )
        if not ids:
            break
        last = ids[-1]
        boards.live_boards()  # before anything commits (see boards.live_boards)
        states = ledger.lock_members(ids)
        writer = ledger.LedgerWriter(states=states)
        members = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(ids)))}
        for member_id in ids:
            _member(rules, members[member_id], writer, start, now, emergencies, partners, report)
        rows = ledger.write(writer)
        industry = {m.id: m.industry for m in members.values()}
        boards.record_after_commit(boards.board_entries(rows, industry.get, None))
        db.session.commit()
        honours.recheck(rules, ids, now)  # badges and levels on the new counts
        report.members += len(ids)
        batches += 1
        if on_batch:
            on_batch(report)
    return report


def _member(rules, member: Member, writer, start, now, emergencies, partners, report) -> None:
    events = list(
        db.session.scalars(
            select(Event)
            .where(Event.member_id == member.id, Event.status.in_(SCORED))
            .order_by(Event.occurred_at, Event.id)
        )
    )
    mine = [e for e in events if e.occurred_at >= start and e.rules_version != rules.version]
    credited = _credited([e.id for e in mine])
    facts = facts_of(member)
    counters: dict = {}
    for event in events:
        new = score_event(rules, event, facts, counters, emergencies,
                                   partners.get(event.partner_id, ""))  # fmt: skip
        if event.occurred_at < start or event.rules_version == rules.version:
            continue  # replayed for the counts only
        report.events += 1
        old, last_entry = credited.get(event.id, (Tally(), {}))
        if new != old:
            report.changed += 1
            for rule in sorted(set(old) | set(new)):
                if old[rule] == new[rule]:
                    continue
                fields = {
                    "org_code": event.org_code, "partner_id": event.partner_id, "rule": rule,
                    "rules_version": rules.version, "occurred_at": event.occurred_at,
                    "created_at": now, "explanation": {"recalculated": rules.version},
                    "ref": event.partner_event_id, "event_id": event.id,
                }  # fmt: skip
                if old[rule]:
                    entry_id, category = last_entry[rule]
                    writer.append(
                        member.id,
                        -old[rule],
                        LedgerKind.REVERSE,
                        reason=f"规则更新（{rules.version}）后重新计分：撤回原来的 {old[rule]} 分",
                        category=category,
                        reverses_id=entry_id,
                        reverses_earning=True,
                        **fields,
                    )
                    report.reversed_points += old[rule]
                if new[rule]:
                    writer.append(
                        member.id,
                        new[rule],
                        LedgerKind.AWARD,
                        reason=f"规则更新（{rules.version}）后重新计分：{new[rule]} 分",
                        category=_category(rules, rule),
                        **fields,
                    )
                    report.credited_points += new[rule]
        event.points = sum(new.values())
        event.rules_version = rules.version
        if event.status in (EventStatus.AWARDED, EventStatus.NO_MATCH):
            event.status = EventStatus.AWARDED if new else EventStatus.NO_MATCH
    db.session.execute(delete(Counter).where(Counter.member_id == member.id))
    if counters:
        db.session.execute(
            insert(Counter),
            [{"member_id": member.id, "bucket": b, "period": p, "points": v[0], "count": v[1]}
             for (b, p), v in counters.items()],
        )  # fmt: skip


def _credited(event_ids: list[int]) -> dict[int, tuple[Tally, dict]]:
    """Per event: points credited per rule (awards less reversals), and per rule the newest
    award entry (id, category) a reversal names."""
    out: dict[int, tuple[Tally, dict]] = {}
    if not event_ids:
        return out
    rows = db.session.execute(
        select(LedgerEntry.id, LedgerEntry.event_id, LedgerEntry.rule, LedgerEntry.points,
               LedgerEntry.kind, LedgerEntry.category)
        .where(LedgerEntry.event_id.in_(event_ids),
               LedgerEntry.kind.in_([LedgerKind.AWARD, LedgerKind.REVERSE]),
               LedgerEntry.rule.is_not(None))
        .order_by(LedgerEntry.id)
    )  # fmt: skip
    for entry_id, event_id, rule, points, kind, category in rows:
        tally, last = out.setdefault(event_id, (Tally(), {}))
        tally[rule] += points
        if kind == LedgerKind.AWARD:
            last[rule] = (entry_id, category)
    for tally, _ in out.values():
        for rule in [r for r, p in tally.items() if p == 0]:
            del tally[rule]
    return out


def _category(rules: RuleSet, rule_key: str) -> str:
    for chain in rules.chains.values():
        for rule in chain:
            if rule.key == rule_key:
                return str(rule.category)
    return "other"
