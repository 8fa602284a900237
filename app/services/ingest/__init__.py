"""Ingest partners' events: validate, score with the rules engine, append to the ledger.

One function serves the single-event API, the batch API and dry runs. A batch is parsed, then
everything scoring needs is read at once (the members, events already stored under these ids,
duty spans that could overlap, cap counters), every event is scored in memory, and what was
decided is written at once: a fixed number of statements whatever the batch size (two on
PostgreSQL, see ``store_pg``). An event is stored once per (partner, partner's event id): the
same id again with the same body replays the first response; with another body it is a
conflict. One batch may hold several partners' events (``ingest_mixed``: the single events
that group commit gathers); members and event ids are then told apart by partner.
"""

from __future__ import annotations

import datetime as dt
import time

from flask import current_app
from sqlalchemy import or_, select

from ...engine import EmergencyFacts, EventFacts, add_counters, evaluate
from ...engine.periods import period_keys
from ...engine.ruleset import ancestors
from ...errors import Forbidden, Invalid, Unavailable
from ...extensions import db
from ...models import Emergency, EventStatus, LedgerKind
from ...models.base import utcnow
from .. import boards
from ..achievements import Achievements, Trigger
from ..ledger import LedgerWriter
from ..rules import current_rules
from .parse import EventIn, Item, Later, Outcome, conflict, fail, parse_item
from .store import Retry, SessionStore, Snapshot, Wanted, Writes
from .store_pg import PgStore

__all__ = ["EventIn", "Outcome", "clear_emergency_cache", "emergency_at", "ingest", "ingest_mixed"]

DUPLICATE_REASON = "与已记录的同类时段重叠，视为重复上报，不再计分"
ATTEMPTS = 3


def ingest(
    partner, raws: list, dry_run: bool = False, own_transaction: bool = False
) -> list[Outcome]:
    """Validate, score and (unless ``dry_run``) store ``raws``, posted by ``partner``; one
    ``Outcome`` each, in order. See ``ingest_mixed``."""
    return ingest_mixed([partner] * len(raws), raws, dry_run, own_transaction)


def ingest_mixed(
    partners: list, raws: list, dry_run: bool = False, own_transaction: bool = False
) -> list[Outcome]:
    """Validate, score and (unless ``dry_run``) store ``raws``, each posted by the partner
    at the same place of ``partners``; one ``Outcome`` each, in order.

    A bad event gets its own error and does not affect the others. With ``own_transaction``
    ingest runs in a transaction of its own and commits it (the API; on PostgreSQL on a
    connection of its own, with the two-statement optimistic store); otherwise it works in a
    savepoint of the session's transaction and the caller commits. If another transaction
    writes for the same members or stores one of these events meanwhile, the work is undone
    and done again.
    """
    if not dry_run:
        # before anything commits: on the embedded default the first use of Redis in a
        # process rebuilds its boards from the ledger, which must not hold entries that are
        # then added live as well
        boards.live_boards()
    if own_transaction and db.engine.dialect.name == "postgresql":
        store = PgStore()
    else:
        store = SessionStore(savepoint=not own_transaction)
    try:
        for attempt in range(ATTEMPTS):
            # the optimistic store reads without locks first; after losing a race, under them
            lock = not dry_run and (attempt > 0 or not store.checks_versions)
            try:
                with store.transaction(commit=own_transaction and not dry_run):
                    outcomes, entries = _ingest(store, partners, raws, dry_run, lock)
            except Retry:
                continue
            break
        else:
            raise Unavailable(
                "other requests for the same members kept winning; send it again",
                code="contention",
            )
    finally:
        store.close()  # its connection goes back to the pool before Redis is called
    # the boards see only what is committed: now, or when the caller commits
    if own_transaction:
        boards.record(entries)
    else:
        boards.record_after_commit(entries)
    return outcomes


def _ingest(store, partners: list, raws: list, dry_run: bool, lock: bool):
    """(an outcome per event, the ledger entries written for the boards)."""
    rules = current_rules()
    now = utcnow()
    pairs = enumerate(zip(partners, raws, strict=True))
    items = [Item(i, raw, partner) for i, (partner, raw) in pairs]
    for item in items:
        parse_item(item, item.partner, rules, current_app.config, now)
    live = [it for it in items if it.outcome is None]
    snap = store.load(_wanted(live, rules, dry_run), lock) if live else Snapshot()
    _resolve(live, snap)
    fresh = _replays(items, snap.stored)
    writer = LedgerWriter(states=snap.states)
    ach = Achievements(rules, writer, now)
    spans, counters = snap.spans, snap.counters
    changed: set[tuple] = set()
    emergencies = _emergencies(fresh)
    event_rows = []
    for it in fresh:
        partner = it.partner
        facts = snap.facts[it.member_id]
        state = writer.states[it.member_id]
        span = it.span
        awards = []
        emergency = None
        if span is not None and _overlaps(spans.get((it.member_id, it.etype.name), ()), span):
            status = EventStatus.DUPLICATE
        else:
            mine = counters.setdefault(it.member_id, {})
            emergency = emergency_at(emergencies, it.org, it.occurred_at)
            result = evaluate(
                rules,
                EventFacts(it.etype.name, it.org, it.occurred_at, it.data, partner.code),
                facts,
                mine,
                emergency,
            )
            add_counters(mine, result.counters)
            changed.update((it.member_id, *key) for key in result.counters)
            status = EventStatus(result.status.value)
            awards = result.awards
            if span is not None:
                spans.setdefault((it.member_id, it.etype.name), []).append(span)
        credited = [a for a in awards if not a.pending and a.points > 0]
        points = sum(a.points for a in credited)
        if dry_run:
            state.balance += points  # nothing is written: only later events read it
        else:
            for a in credited:  # moves state.balance
                writer.append(
                    it.member_id,
                    a.points,
                    LedgerKind.AWARD,
                    org_code=it.org,
                    partner_id=partner.id,
                    rule=a.rule,
                    rules_version=rules.version,
                    category=a.category,
                    occurred_at=it.occurred_at,
                    created_at=now,
                    reason=a.reason,
                    # the organisation whose version of the rule applied (the key names the first)
                    explanation=a.explanation.as_dict() | {"rule_org": a.org},
                    ref=it.parsed["id"],
                    event_ref=it.event_key,
                )
        granted, levelled, written = len(ach.grants), len(ach.level_changes), len(writer.rows)
        if not dry_run and (status is EventStatus.AWARDED or credited):
            earned: dict[str, int] = {}
            for a in credited:
                earned[a.category] = earned.get(a.category, 0) + a.points
            if status is EventStatus.AWARDED:
                local = it.occurred_at.astimezone(rules.tz)
                ach.record_event(state, it.etype, it.data, local, emergency is not None, earned)
            else:
                ach.add_earned(state, earned)
            ach.settle(
                state,
                facts,
                Trigger(it.org, it.occurred_at, it.parsed["id"], it.etype.title, link=it.event_key),
            )
        body = {
            "event": it.parsed["id"],
            "status": status.value,
            "points": points,
            "awards": [
                {"rule": a.rule, "points": a.points, "reason": a.reason, "pending": a.pending}
                for a in awards
            ],
            "balance": state.balance,
            "rules_version": rules.version,
        }
        if status is EventStatus.DUPLICATE:
            body["reason"] = DUPLICATE_REASON
        if len(ach.grants) > granted:
            body["badges"] = [
                {"badge": g["badge"], "n": g["n"], "reason": g["reason"], "bonus": g["bonus"]}
                for g in ach.grants[granted:]
            ]
        if len(ach.level_changes) > levelled:
            body["level"] = ach.level_changes[-1]["to_level"]
        bonus = sum(row["points"] for row in writer.rows[written:])
        if bonus:
            body["bonus"] = bonus
        if dry_run:
            body["dry_run"] = True
            it.outcome = Outcome(200, body)
            continue
        it.outcome = Outcome(201, body)
        event_rows.append(_event_row(it, partner, rules, now, status, points, body))
    entries = []
    if event_rows:
        facts = snap.facts
        entries = boards.board_entries(
            writer.rows, lambda m: facts[m].industry, {p.id: p.code for p in partners}
        )
        touched = {row["member_id"] for row in event_rows}
        store.save(
            Writes(
                events=event_rows,
                ledger=writer,
                counters=[
                    {"member_id": m, "bucket": b, "period": p, "points": counters[m][(b, p)][0],
                     "count": counters[m][(b, p)][1]}
                    for m, b, p in sorted(changed)
                ],  # absolute values: nobody else moved them (locked, or checked on write)
                members=[writer.states[m] for m in sorted(touched)],
                event_ids=snap.event_ids,
                grants=ach.grants,
                level_changes=ach.level_changes,
            )
        )  # fmt: skip
    outcomes = [
        it.outcome.resolve() if isinstance(it.outcome, Later) else it.outcome for it in items
    ]
    return outcomes, entries


def _wanted(items: list[Item], rules, dry_run: bool) -> Wanted:
    """What to read for these parsed events."""
    windows: dict[tuple, tuple] = {}
    periods: dict[tuple[int, str], set[str]] = {}
    for it in items:
        ref = it.member_key
        span = it.span
        if span is not None:  # one window per (member, type): spans that can overlap the batch's
            key = (ref, it.etype.name)
            lo, hi = windows.get(key, span)
            windows[key] = (min(lo, span[0]), max(hi, span[1]))
        periods.setdefault(ref, set()).update(
            period_keys(it.occurred_at.astimezone(rules.tz)).values()
        )
    return Wanted(
        refs=sorted({it.member_key for it in items}),
        event_ids=sorted({it.event_key for it in items}),
        orgs=sorted({it.parsed["org"] for it in items if "org" in it.parsed}),
        windows=windows,
        periods=periods,
        new_ids=0 if dry_run else len(items),
    )


def _resolve(items: list[Item], snap) -> None:
    """Set each event's member and organisation, or its error."""
    for it in items:
        if it.member_key not in snap.members:
            ref = it.parsed["member"]
            it.outcome = fail(Invalid(f"unknown member {ref!r}", {"member": ref}, "unknown_member"))
            continue
        it.member_id, primary = snap.members[it.member_key]
        it.org = it.parsed.get("org", primary)
        if "org" in it.parsed and it.org not in snap.known_orgs:
            it.outcome = fail(
                Invalid(f"unknown organisation {it.org!r}", {"org": it.org}, "unknown_org")
            )
        elif not it.partner.may_report_for(it.org):
            it.outcome = fail(
                Forbidden(
                    f"this partner may not report events at {it.org}",
                    {"org": it.org},
                    "org_not_allowed",
                )
            )


def _replays(items: list[Item], stored: dict) -> list[Item]:
    """Answer events stored before (same body: the first response; else a conflict) and
    repeats within the batch; return the items still to score, in order."""
    first_in_batch: dict[tuple[int, str], Item] = {}
    fresh = []
    for it in items:
        if not it.body_hash:
            continue
        eid = it.event_key
        if eid in stored:
            same = stored[eid][0] == it.body_hash
            it.outcome = Outcome(200, stored[eid][1]) if same else conflict(it.parsed["id"])
        elif eid in first_in_batch:
            it.outcome = Later(first_in_batch[eid], it.body_hash)
        elif it.outcome is None:
            first_in_batch[eid] = it
            fresh.append(it)
    return fresh


def _overlaps(spans, span) -> bool:
    start, end = span
    return any(s < end and start < e for s, e in spans)


def _event_row(it: Item, partner, rules, now, status, points: int, body: dict) -> dict:
    span = it.span or (None, None)
    return {
        "partner_id": partner.id,
        "partner_event_id": it.parsed["id"],
        "body_hash": it.body_hash,
        "type": it.etype.name,
        "member_id": it.member_id,
        "org_code": it.org,
        "occurred_at": it.occurred_at,
        "received_at": now,
        "data": _jsonable(it.data),
        "status": status.value,
        "rules_version": rules.version,
        "points": points,
        "span_start": span[0],
        "span_end": span[1],
        "response": body,
        "reason": body.get("reason"),
    }


def clear_emergency_cache() -> None:
    """Whoever declares or ends an emergency calls this, so it applies at once here."""
    current_app.extensions.pop("pioneer.emergencies", None)


def _emergencies(items: list[Item]) -> list[Emergency]:
    """Emergencies that may be in force for these events (detached rows, read-only).

    Cached per process for a few seconds: an emergency declared or ended in another process
    takes effect here within EMERGENCY_CACHE_SECONDS.
    """
    if not items:
        return []
    cache = current_app.extensions.setdefault("pioneer.emergencies", [0.0, []])
    if cache[0] < time.monotonic():
        horizon = utcnow() - dt.timedelta(days=current_app.config["EVENT_HORIZON_DAYS"] + 1)
        found = list(
            db.session.scalars(
                select(Emergency).where(
                    or_(Emergency.ended_at.is_(None), Emergency.ended_at > horizon)
                )
            )
        )
        for e in found:  # kept across requests and sessions: loaded, then let go
            db.session.expunge(e)
        cache[1] = found
        cache[0] = time.monotonic() + current_app.config["EMERGENCY_CACHE_SECONDS"]
    return cache[1]


def emergency_at(emergencies: list[Emergency], org_code: str, at) -> EmergencyFacts | None:
    """The emergency in force at ``at`` for the region of ``org_code`` (the first found), as
    the rules engine sees it; for ingest, verification, simulation and recalculation alike."""
    if not emergencies:
        return None
    regions = set(ancestors(org_code))
    for e in emergencies:
        if e.org_code in regions and e.in_force(at):
            return EmergencyFacts(e.name, e.kind)
    return None


def _jsonable(data: dict) -> dict:
    return {
        k: v.isoformat() if isinstance(v, dt.datetime | dt.date) else v for k, v in data.items()
    }
