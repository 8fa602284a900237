"""Verification: an organisation confirms or rejects events that wait for it (e.g. volunteer
hours reported by a partner, to be checked against the sign-in sheet).

Approving scores the event again with ``confirming=True``: the rules that wait for
verification now award (the others credited their points when the event arrived), under the
rules version the event was scored with when it arrived (the one in force then: a version
published since changes nothing for it, unless a recalculation re-scored it under the new
one), under the caps as they stand now, with the emergency that was in force when it
happened. The awards are ledger entries of the event, its counters move, the event counts
towards badges, and the boards are updated after the commit. Rejecting keeps what was
already credited and records the reason the rider sees. Either happens once: an event no
longer pending is left alone. Services flush; the caller commits (then
``boards.record_after_commit`` runs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select, update

from ..engine import EventFacts, RuleSet, add_counters, evaluate
from ..engine.periods import period_keys
from ..extensions import db
from ..models import (
    ConsoleUser,
    Counter,
    Emergency,
    Event,
    EventStatus,
    LedgerKind,
    Member,
    Partner,
)
from ..models.base import utcnow
from . import boards, ledger
from .achievements import Achievements, Trigger
from .console_users import audit, in_scope, in_subtree
from .ingest import emergency_at
from .ingest.store import upsert
from .rewards import facts_of
from .rules import load_version
from .simulate import stored_data

MAX_BATCH = 200
REASON_MAX = 500


@dataclass
class Decision:
    decided: list[int] = field(default_factory=list)  # event ids
    skipped: list[int] = field(default_factory=list)  # not pending, or outside the subtree
    points: int = 0


def pending(user: ConsoleUser, limit: int = 50, before: int | None = None) -> list[Event]:
    """Events waiting for verification in the user's subtree, oldest first."""
    query = select(Event).where(
        Event.status == EventStatus.PENDING,
        in_subtree(Event.org_code, user.org_code),
    )
    if before is not None:
        query = query.where(Event.id > before)
    return list(db.session.scalars(query.order_by(Event.id).limit(limit)))


def _events(user: ConsoleUser, ids: list[int], decision: Decision) -> list[Event]:
    found = list(db.session.scalars(select(Event).where(Event.id.in_(ids[:MAX_BATCH]))))
    ok = [e for e in found if in_scope(user, e.org_code)]
    decision.skipped += sorted(set(ids) - {e.id for e in ok})
    return sorted(ok, key=lambda e: e.id)


def _claim(event: Event, status: EventStatus, reason: str | None, now) -> bool:
    """Move a pending event to ``status``, unless someone decided it first."""
    done = db.session.execute(
        update(Event)
        .where(Event.id == event.id, Event.status == EventStatus.PENDING)
        .values(status=status, decided_at=now, reason=reason)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        return False
    event.status, event.decided_at, event.reason = status, now, reason  # the session sees it
    return True


def reject(user: ConsoleUser, ids: list[int], reason: str, now=None) -> Decision:
    now = now or utcnow()
    reason = reason.strip()[:REASON_MAX]
    decision = Decision()
    for event in _events(user, ids, decision):
        if _claim(event, EventStatus.REJECTED, reason, now):
            decision.decided.append(event.id)
            audit(user, event.org_code, "event.reject", f"event:{event.id}",
                  {"status": "pending"}, {"status": "rejected", "reason": reason})  # fmt: skip
        else:
            decision.skipped.append(event.id)
    return decision


def approve(rules: RuleSet, user: ConsoleUser, ids: list[int], now=None) -> Decision:
    now = now or utcnow()
    decision = Decision()
    events = _events(user, ids, decision)
    if not events:
        return decision
    boards.live_boards()  # before anything commits (see boards.live_boards)
    states = ledger.lock_members({e.member_id for e in events})
    writer = ledger.LedgerWriter(states=states)
    ach = Achievements(rules, writer, now)
    members = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(states)))}
    partners = dict(db.session.execute(select(Partner.id, Partner.code)).all())
    emergencies = list(db.session.scalars(select(Emergency)))
    versions = {rules.version: rules}
    for event in events:
        if not _claim(event, EventStatus.AWARDED, None, now):
            decision.skipped.append(event.id)
            continue
        scoring = _version_of(event, versions, rules)
        _score(scoring, event, members[event.member_id], states[event.member_id], writer, ach,
               partners, emergencies, now)  # fmt: skip
        audit(user, event.org_code, "event.approve", f"event:{event.id}", {"status": "pending"},
              {"status": "awarded", "points": event.points})  # fmt: skip
        decision.decided.append(event.id)
    rows = ledger.write(writer, ach.grants, ach.level_changes)
    decision.points = sum(r["points"] for r in rows if r["kind"] == LedgerKind.AWARD)
    industry = {m.id: m.industry for m in members.values()}
    boards.record_after_commit(boards.board_entries(rows, industry.get, partners))
    return decision


def _version_of(event: Event, versions: dict[str, RuleSet], current: RuleSet) -> RuleSet:
    """The rules version the event was scored with on arrival (loaded once per approval); the
    version in force when that one was never published (rules read from RULES_DIR)."""
    if event.rules_version not in versions:
        versions[event.rules_version] = load_version(event.rules_version) or current
    return versions[event.rules_version]


def _score(rules, event: Event, member: Member, state, writer, ach, partners, emergencies,
           now) -> None:  # fmt: skip
    """Score a confirmed event and queue what it earns (entries, counters, badges, levels)."""
    facts = facts_of(member)
    local = event.occurred_at.astimezone(rules.tz)
    counters = _counters(member.id, local)
    emergency = emergency_at(emergencies, event.org_code, event.occurred_at)
    result = evaluate(
        rules,
        EventFacts(event.type, event.org_code, event.occurred_at, stored_data(rules, event),
                   partners.get(event.partner_id, "")),
        facts,
        counters,
        emergency,
        confirming=True,
    )  # fmt: skip
    add_counters(counters, result.counters)
    for bucket, period in result.counters:
        total = counters[(bucket, period)]
        db.session.execute(
            upsert(Counter.__table__)
            .values(
                member_id=member.id, bucket=bucket, period=period, points=total[0], count=total[1]
            )
            .on_conflict_do_update(
                index_elements=["member_id", "bucket", "period"],
                set_={"points": total[0], "count": total[1]},
            )
        )
    first = len(writer.rows)
    credited = [a for a in result.awards if not a.pending and a.points > 0]
    earned: dict[str, int] = {}
    for a in credited:
        writer.append(
            member.id,
            a.points,
            LedgerKind.AWARD,
            org_code=event.org_code,
            partner_id=event.partner_id,
            rule=a.rule,
            rules_version=rules.version,
            category=a.category,
            occurred_at=event.occurred_at,
            created_at=now,
            reason=f"{a.reason}（已确认）",
            explanation=a.explanation.as_dict() | {"rule_org": a.org, "confirmed": True},
            ref=event.partner_event_id,
            event_id=event.id,
        )
        earned[a.category] = earned.get(a.category, 0) + a.points
    event.points = (event.points or 0) + sum(earned.values())
    etype = rules.event_types.get(event.type)
    if etype is not None:
        ach.record_event(state, etype, event.data or {}, local, emergency is not None, earned)
    ach.settle(state, facts, Trigger(event.org_code, event.occurred_at, None,
                                     etype.title if etype else ""))  # fmt: skip
    for row in (*writer.rows[first:], *ach.grants, *ach.level_changes):
        if row.get("event_id") is None:  # bonuses, grants and level-ups this event brought
            row["event_id"] = event.id


def _counters(member_id: int, local: dt.datetime) -> dict:
    periods = list(period_keys(local).values())
    rows = db.session.execute(
        select(Counter.bucket, Counter.period, Counter.points, Counter.count).where(
            Counter.member_id == member_id, Counter.period.in_(periods)
        )
    )
    return {(r.bucket, r.period): (r.points, r.count) for r in rows}
