"""Recalculation: re-score stored events under a published rules version, by appending to the
ledger (history is never edited).

For every member with events since a date, under that member's lock: the member's whole event
history is replayed under the new version (so caps, including all-time ones, are counted as the
new rules count them), and for each event since the date whose points per rule differ, the
old award is reversed (a ``reverse`` entry) and the new one credited (an ``award`` entry naming
the new version). The event is then marked with the version, so a second run, or a run that
resumes after an interruption, leaves it alone. Counters are replaced by the replayed ones and
badges and levels re-evaluated (``honours.recheck_batch``) in the same transaction.

Members go a batch (``BATCH``) per transaction, read and written with a few set-based
statements each (Core rows, ``= ANY`` arrays, COPY for the new rows, one UPDATE of the events):
the cost is the scoring, not round trips. The boards get the corrections live (a thread feeds
them while the next batch is scored), or, for a recalculation split over several workers
(``part``), from one rebuild once every part is done (``jobs.rules``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter

from sqlalchemy import DateTime, bindparam, delete, select, type_coerce, update

from ..engine import RuleSet
from ..extensions import db
from ..models import (
    Counter,
    Emergency,
    Event,
    EventStatus,
    LedgerEntry,
    LedgerKind,
    Partner,
)
from ..models.base import utcnow
from . import boards, honours, ledger
from .achievements import Achievements
from .bulk import among, execute_rows, insert_rows
from .members import facts_for
from .simulate import score_event

BATCH = 2_000  # members per transaction
IN_CHUNK = 10_000  # ids per IN (...) list
SCORED = (EventStatus.AWARDED, EventStatus.PENDING, EventStatus.NO_MATCH, EventStatus.REJECTED)
_NOTHING: tuple[Tally, dict] = (Tally(), {})  # what an event never credited had (read only)
EVENT_COLUMNS = ("id", "member_id", "partner_id", "partner_event_id", "type", "org_code",
                 "occurred_at", "data", "status", "rules_version")  # fmt: skip


@dataclass
class Report:
    version: str
    members: int = 0
    events: int = 0
    changed: int = 0
    reversed_points: int = 0
    credited_points: int = 0
    badges_granted: int = 0
    badges_revoked: int = 0
    levels: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Run:
    """What every batch of one recalculation shares."""

    rules: RuleSet
    start: dt.datetime  # events from here on are re-credited
    now: dt.datetime
    emergencies: list
    partners: dict[int, str]  # id → code
    categories: dict[str, str]  # rule key → category
    report: Report
    explanation: dict  # of every entry it writes (one object: COPY dumps it once)
    feeder: boards.Feeder | None  # None: the caller rebuilds the boards


@dataclass
class _Batch:
    """What one transaction re-scores: a batch of locked members and their events."""

    run: _Run
    writer: ledger.LedgerWriter
    facts: dict
    credited: dict[int, tuple[Tally, dict]]
    events: list[tuple[int, int, str]] = field(default_factory=list)  # (id, points, status)
    counters: list[dict] = field(default_factory=list)
    accepted: dict[int, list] = field(default_factory=dict)  # what badges count, by member


def recalculate(rules: RuleSet, since: dt.date, now: dt.datetime | None = None,
                on_batch: Callable[[Report], None] | None = None,
                max_batches: int | None = None, part: tuple[int, int] = (0, 1),
                live_boards: bool = True) -> Report:  # fmt: skip
    """Re-score the events that happened from ``since`` (local date) on; commits per batch of
    members. ``max_batches`` stops early (a resumable run in parts). ``part`` (k, n): only the
    members whose id is k modulo n, so n workers can share the work. ``live_boards``: record
    the corrections on the boards as each batch commits (from a thread, overlapping the next
    batch); without it the caller rebuilds the boards afterwards."""
    report = Report(rules.version)
    with contextlib.ExitStack() as stack:
        run = _Run(
            rules=rules,
            start=dt.datetime.combine(since, dt.time(), tzinfo=rules.tz),
            now=now or utcnow(),
            emergencies=list(db.session.scalars(select(Emergency))),
            partners=dict(db.session.execute(select(Partner.id, Partner.code)).all()),
            categories={r.key: str(r.category) for c in rules.chains.values() for r in c},
            report=report,
            explanation={"recalculated": rules.version},
            feeder=stack.enter_context(boards.Feeder()) if live_boards else None,
        )
        ids = _members_to_do(run, part)
        stack.enter_context(_no_cyclic_gc())
        for batches, at in enumerate(range(0, len(ids), BATCH)):
            if max_batches is not None and batches >= max_batches:
                break
            _batch(run, ids[at : at + BATCH])
            if on_batch:
                on_batch(report)
    return report


@contextlib.contextmanager
def _no_cyclic_gc():
    """The cyclic garbage collector off while batches run, one collection after: a batch
    allocates hundreds of thousands of short-lived rows and dicts, freed by reference counting
    (nothing it makes is cyclic), and the collector would keep rescanning the survivors."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        gc.collect()


def _members_to_do(run: _Run, part: tuple[int, int]) -> list[int]:
    """Members (of ``part``) with events in the window not yet scored under the version."""
    k, n = part
    query = select(Event.member_id).where(
        Event.occurred_at >= run.start,
        Event.status.in_(SCORED),
        Event.rules_version != run.rules.version,
    )
    if n > 1:
        query = query.where(Event.member_id % n == k)
    return list(db.session.scalars(query.distinct().order_by(Event.member_id)))


def _batch(run: _Run, ids: list[int]) -> None:
    """Re-score the events of members ``ids`` in one transaction."""
    version = run.rules.version
    boards.live_boards()  # before anything commits (see boards.live_boards)
    writer = ledger.LedgerWriter(states=ledger.lock_members(ids))
    facts = facts_for(ids)
    events = _events(ids)
    credited = _credited(
        [e.id for e in events if e.occurred_at >= run.start and e.rules_version != version]
    )
    batch = _Batch(run, writer, facts, credited)
    for member_id, mine in groupby(events, key=attrgetter("member_id")):
        _member(batch, member_id, list(mine))
    _store_events(batch.events, version)
    _store_counters(ids, batch.counters)
    # badges and levels on the new counts, decided in the same transaction
    ach = Achievements(run.rules, writer, run.now)
    done = {"members": 0, "granted": 0, "revoked": 0, "levels": 0}
    honours.recheck_batch(ach, facts, batch.accepted, run.emergencies, done, writer.rows)
    rows = ledger.write(writer, ach.grants, ach.level_changes, returning=False)
    entries = []
    if run.feeder is not None:
        industry = {m: f.industry for m, f in facts.items()}
        entries = boards.board_entries(rows, industry.get, run.partners)
    db.session.commit()
    if run.feeder is not None:
        run.feeder.put(entries)
    run.report.members += len(ids)
    run.report.badges_granted += done["granted"]
    run.report.badges_revoked += done["revoked"]
    run.report.levels += done["levels"]


def _events(member_ids: list[int]) -> list:
    """The members' scored events, each member's in the order they happened."""
    e = Event.__table__.c
    columns = [e[c] for c in EVENT_COLUMNS]
    if db.session.get_bind().dialect.name == "postgresql":  # timestamptz comes back aware:
        columns[EVENT_COLUMNS.index("occurred_at")] = type_coerce(  # no per-row conversion
            e.occurred_at, DateTime(timezone=True)
        ).label("occurred_at")
    return db.session.execute(  # .all(): one fetch, not one per row
        select(*columns)
        .where(among(e.member_id, member_ids), e.status.in_(SCORED))
        .order_by(e.member_id, e.occurred_at, e.id)
    ).all()


def _member(batch: _Batch, member_id: int, events: list) -> None:
    """Replay one member's whole history; re-credit the events of the window."""
    run = batch.run
    rules, report, version = run.rules, run.report, run.rules.version
    facts = batch.facts[member_id]
    counters: dict = {}
    accepted = batch.accepted.setdefault(member_id, [])
    for event in events:
        new = score_event(rules, event, facts, counters, run.emergencies,
                          run.partners.get(event.partner_id, ""))  # fmt: skip
        status = event.status
        if event.occurred_at < run.start or event.rules_version == version:
            if status == EventStatus.AWARDED:  # replayed for the counts only
                accepted.append(event)
            continue
        report.events += 1
        old, last_entry = batch.credited.get(event.id, _NOTHING)
        if new != old:
            report.changed += 1
            _recredit(batch, member_id, event, old, new, last_entry)
        if status in (EventStatus.AWARDED, EventStatus.NO_MATCH):
            status = EventStatus.AWARDED if new else EventStatus.NO_MATCH
        if status == EventStatus.AWARDED:
            accepted.append(event)
        batch.events.append((event.id, sum(new.values()), str(status)))
    batch.counters.extend(
        {"member_id": member_id, "bucket": b, "period": p, "points": v[0], "count": v[1]}
        for (b, p), v in counters.items()
    )


def _recredit(batch: _Batch, member_id: int, event, old: Tally, new: Tally,
              last_entry: dict) -> None:  # fmt: skip
    """Reverse what changed of the old award and credit the new one, rule by rule."""
    run = batch.run
    version = run.rules.version
    for rule in sorted(set(old) | set(new)):
        if old[rule] == new[rule]:
            continue
        row = {
            "member_id": member_id, "event_id": event.id, "rule": rule, "rules_version": version,
            "org_code": event.org_code, "partner_id": event.partner_id,
            "occurred_at": event.occurred_at, "created_at": run.now,
            "explanation": run.explanation, "reverses_id": None, "ref": event.partner_event_id,
        }  # fmt: skip
        if old[rule]:
            entry_id, category = last_entry[rule]
            batch.writer.add(row | {
                "points": -old[rule], "kind": str(LedgerKind.REVERSE), "category": category,
                "reverses_id": entry_id,
                "reason": f"规则更新（{version}）后重新计分：撤回原来的 {old[rule]} 分",
            }, earning=True)  # fmt: skip
            run.report.reversed_points += old[rule]
        if new[rule]:
            batch.writer.add(row | {
                "points": new[rule], "kind": str(LedgerKind.AWARD),
                "category": run.categories.get(rule, "other"),
                "reason": f"规则更新（{version}）后重新计分：{new[rule]} 分",
            }, earning=True)  # fmt: skip
            run.report.credited_points += new[rule]


def _store_events(changes: list[tuple[int, int, str]], version: str) -> None:
    """Give the re-scored events their points, status and version (one statement on
    PostgreSQL)."""
    events = Event.__table__
    execute_rows(
        "UPDATE events AS e SET points = v.points, status = v.status, rules_version = :version "
        "FROM unnest(CAST(:e_id AS bigint[]), CAST(:e_points AS integer[]), "
        "CAST(:e_status AS varchar[])) AS v(id, points, status) WHERE e.id = v.id",
        update(events)
        .where(events.c.id == bindparam("e_id"))
        .values(points=bindparam("e_points"), status=bindparam("e_status"), rules_version=version),
        ("e_id", "e_points", "e_status"),
        changes,
        version=version,
    )


def _store_counters(member_ids: list[int], rows: list[dict]) -> None:
    """Bring the members' cap counters to the replayed ones, writing only what differs (a
    rules change usually moves the counters of a few rules, not all of them)."""
    c = Counter.__table__.c
    stored = {
        (r.member_id, r.bucket, r.period): (r.points, r.count)
        for r in db.session.execute(
            select(c.member_id, c.bucket, c.period, c.points, c.count).where(
                among(c.member_id, member_ids)
            )
        ).all()
    }
    new = {(r["member_id"], r["bucket"], r["period"]): (r["points"], r["count"]) for r in rows}
    _delete_counters([k for k, v in stored.items() if new.get(k) != v])  # gone or changed
    insert_rows(Counter.__table__, [
        r for r in rows if stored.get((r["member_id"], r["bucket"], r["period"]))
        != (r["points"], r["count"])
    ])  # fmt: skip


def _delete_counters(keys: list[tuple[int, str, str]]) -> None:
    counters = Counter.__table__
    execute_rows(
        "DELETE FROM counters AS c USING unnest(CAST(:k_m AS bigint[]), "
        "CAST(:k_b AS varchar[]), CAST(:k_p AS varchar[])) AS d(m, b, p) "
        "WHERE c.member_id = d.m AND c.bucket = d.b AND c.period = d.p",
        delete(counters).where(
            counters.c.member_id == bindparam("k_m"),
            counters.c.bucket == bindparam("k_b"),
            counters.c.period == bindparam("k_p"),
        ),
        ("k_m", "k_b", "k_p"),
        keys,
    )


def _credited(event_ids: list[int]) -> dict[int, tuple[Tally, dict]]:
    """Per event: points credited per rule (awards less reversals), and per rule the newest
    award entry (id, category) a reversal names."""
    out: dict[int, tuple[Tally, dict]] = {}
    e = LedgerEntry.__table__.c
    for at in range(0, len(event_ids), IN_CHUNK):
        chunk = event_ids[at : at + IN_CHUNK]
        rows = db.session.execute(
            select(e.id, e.event_id, e.rule, e.points, e.kind, e.category)
            .where(among(e.event_id, chunk),
                   e.kind.in_([LedgerKind.AWARD, LedgerKind.REVERSE]), e.rule.is_not(None))
            .order_by(e.id)
        ).all()  # fmt: skip
        for entry_id, event_id, rule, points, kind, category in rows:
            tally, last = out.setdefault(event_id, (Tally(), {}))
            tally[rule] += points
            if kind == LedgerKind.AWARD:
                last[rule] = (entry_id, category)
    for tally, _ in out.values():
        for rule in [r for r, p in tally.items() if p == 0]:
            del tally[rule]
    return out
