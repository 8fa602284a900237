"""Badges decided by jobs: ranks reached when a period closes, and re-evaluation.

``grant_rank_badges`` runs after a period is archived (the close-period job): every ``rank``
badge whose period kind matches looks at the archived boards of its kind (a street's month, a
city's year...) inside the badge's own organisation, and grants the members placed within its
``top`` once for that period. ``recheck`` recomputes members' progress from their stored
events and ledger (after a recalculation under new rules, or a repair) and brings their
badges in line: missing grants are made, grants no longer earned are withdrawn with their
bonus reversed. Levels are only ever raised. Both lock the members they write for, commit per
batch, and return what they did.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from ..engine import RuleSet
from ..engine.badges import BADGE_KINDS, grants_due
from ..engine.model import Badge
from ..engine.ruleset import within
from ..extensions import db
from ..models import (
    BadgeGrant,
    BoardArchive,
    BoardPeriod,
    Emergency,
    Event,
    EventStatus,
    LedgerEntry,
    LedgerKind,
    Member,
    Organisation,
)
from ..models.base import utcnow
from . import boards, ledger
from .achievements import (
    Achievements,
    Trigger,
    badge_key,
    badges_in_force,
    count_event,
)
from .bulk import among
from .ingest import emergency_at
from .ledger import MemberState
from .members import facts_for
from .rewards import facts_of

INDUSTRY_PREFIX = "ind."
BATCH = 500
EARNED = (LedgerKind.AWARD, LedgerKind.BONUS, LedgerKind.ADJUST)


def rank_badges(rules: RuleSet, kind: str) -> list[Badge]:
    """Rank badges of every rules file for periods of ``kind`` (week, month, year)."""
    return [
        b
        for f in rules.files.values()
        for b in f.badges
        if b.kind == "rank" and b.params["period"] == kind
    ]


def _board_fits(badge: Badge, scope: str, org_kinds: dict[str, str]) -> bool:
    """Whether the board of ``scope`` is of the badge's kind and inside its organisation."""
    board = badge.params["board"]
    if scope.startswith(INDUSTRY_PREFIX) or scope == "ind":
        return board == "industry" and (not badge.org.startswith("ind") or within(scope, badge.org))
    if board == "industry" or scope.startswith("partner:"):
        return False
    return within(scope, badge.org) and (board == "org" or org_kinds.get(scope) == board)


def grant_rank_badges(rules: RuleSet, period: str, now: dt.datetime | None = None) -> dict:
    """Grant the rank badges of an archived ``period`` (idempotent); commit; report."""
    now = now or utcnow()
    row = db.session.get(BoardPeriod, period)
    report = {"period": period, "granted": 0}
    if row is None:
        return report
    badges = rank_badges(rules, row.kind)
    if not badges:
        return report
    org_kinds = dict(db.session.execute(select(Organisation.code, Organisation.kind)).all())
    names = dict(db.session.execute(select(Organisation.code, Organisation.name)).all())
    # (member, badge key) -> best (rank, scope) among the boards that fit
    best: dict[tuple[int, str], tuple[int, str]] = {}
    by_key = {badge_key(b): b for b in badges}
    for badge in badges:
        a = BoardArchive.__table__.c
        lines = db.session.execute(
            select(a.member_id, a.scope, a.rank).where(
                a.period == period,
                a.board == "lb",
                a.category == badge.params.get("category", "total"),
                a.rank <= badge.params["top"],
                a.points > 0,
            )
        )
        for member_id, scope, rank in lines:
            if _board_fits(badge, scope, org_kinds):
                key = (member_id, badge_key(badge))
                if key not in best or (rank, scope) < best[key]:
                    best[key] = (rank, scope)
    if not best:
        return report
    done = set(
        db.session.execute(
            select(BadgeGrant.member_id, BadgeGrant.badge).where(
                BadgeGrant.period == period, BadgeGrant.badge.in_(list(by_key))
            )
        ).all()
    )
    todo = sorted(k for k in best if k not in done)
    for start in range(0, len(todo), BATCH):
        chunk = todo[start : start + BATCH]
        members = {
            m.id: m
            for m in db.session.scalars(select(Member).where(Member.id.in_({m for m, _ in chunk})))
        }
        states = ledger.lock_members(members)
        writer = ledger.LedgerWriter(states=states)
        ach = Achievements(rules, writer, now)
        for member_id, key in chunk:
            badge, member, state = by_key[key], members[member_id], states[member_id]
            facts = facts_of(member)
            if key not in {badge_key(b) for b in badges_in_force(rules, facts)}:
                continue
            most = badge.repeat_max if badge.repeat_every else 1
            if most and state.progress.get("b", {}).get(key, 0) >= most:
                continue
            rank, scope = best[(member_id, key)]
            trigger = Trigger(org=scope if scope in org_kinds else facts.primary_org,
                              occurred_at=now, period=period)  # fmt: skip
            ach.grant(
                state,
                badge,
                trigger,
                f"{names.get(scope, scope)} {_period_text(period)}第 {rank} 名",
                {
                    "kind": "rank",
                    "scope": scope,
                    "period": period,
                    "rank": rank,
                    "top": badge.params["top"],
                },
            )
            ach.settle(state, facts, trigger)
            report["granted"] += 1
        entries = write_decided(ach, members)
        db.session.commit()
        boards.record(entries)
    return report


def _period_text(period: str) -> str:
    if "-W" in period:
        return f"{period} 周榜"
    if "-" in period:
        return f"{period} 月榜"
    return f"{period} 年榜"


def write_decided(ach: Achievements, members: dict) -> list:
    """Insert what ``ach`` decided; the entries for the boards, to record after the commit.
    ``members``: Member rows or MemberFacts by id (for the industry)."""
    boards.live_boards()  # before the commit (see boards.live_boards)
    rows = ledger.write(ach.writer, ach.grants, ach.level_changes)
    return boards.board_entries(rows, lambda m: members[m].industry)


def close_badges(rules: RuleSet, now: dt.datetime | None = None) -> list[dict]:
    """Grant rank badges for every archived period that has not had them yet."""
    out = []
    for row in db.session.scalars(
        select(BoardPeriod).where(BoardPeriod.badges_at.is_(None)).order_by(BoardPeriod.period)
    ):
        out.append(grant_rank_badges(rules, row.period, now))
        db.session.execute(
            update(BoardPeriod)
            .where(BoardPeriod.period == row.period)
            .values(badges_at=now or utcnow())
        )
        db.session.commit()
    return out


def awarded_events(member_ids) -> dict[int, list]:
    """Each member's accepted events (type, org_code, occurred_at, data): what progress counts."""
    e = Event.__table__.c
    out: dict[int, list] = {}
    for row in db.session.execute(
        select(e.member_id, e.type, e.org_code, e.occurred_at, e.data).where(
            among(e.member_id, member_ids), e.status == EventStatus.AWARDED
        )
    ).all():
        out.setdefault(row.member_id, []).append(row)
    return out


def progress_from(rules: RuleSet, events, categories: dict[str, int], held: dict[str, int],
                  emergencies: list[Emergency]) -> dict:  # fmt: skip
    """A member's progress recomputed from its accepted events, its points by category and
    the grants it holds per badge."""
    p: dict = {"n": {}, "sum": {}, "m": [], "w": [], "em": {}, "cat": dict(categories),
               "b": dict(held)}  # fmt: skip
    for event in events:
        etype = rules.event_types.get(event.type)  # a type since removed: counted, no fields
        at = event.occurred_at
        count_event(p, event.type, etype.fields if etype else {}, event.data,
                    at.astimezone(rules.tz).date(),
                    emergency_at(emergencies, event.org_code, at) is not None)  # fmt: skip
    return p


def recheck(rules: RuleSet, member_ids: list[int] | None = None, now=None,
            on_batch=None) -> dict:  # fmt: skip
    """Recompute progress and bring badges and levels in line, a batch per transaction."""
    now = now or utcnow()
    report = {"members": 0, "granted": 0, "revoked": 0, "levels": 0}
    query = select(Member.id).order_by(Member.id)
    if member_ids is not None:
        query = query.where(Member.id.in_(member_ids))
    ids = list(db.session.scalars(query))
    emergencies = list(db.session.scalars(select(Emergency)))  # once, not per member
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        boards.live_boards()  # before the commit (see boards.live_boards)
        writer = ledger.LedgerWriter(states=ledger.lock_members(chunk))
        ach = Achievements(rules, writer, now)
        facts = facts_for(chunk)
        recheck_batch(ach, facts, awarded_events(chunk), emergencies, report)
        entries = write_decided(ach, facts)
        db.session.commit()
        boards.record(entries)
        if on_batch:
            on_batch(report)
    return report


def recheck_batch(ach: Achievements, facts: dict, events: dict[int, list],
                  emergencies: list[Emergency], report: dict, pending=()) -> None:  # fmt: skip
    """Bring the badges and levels of the members ``ach.writer`` holds locked in line with
    ``events`` (``awarded_events``) and their ledger as this transaction sees it, plus the
    ``pending`` entries queued and not written yet; what it decides is left in ``ach`` for
    the caller to write."""
    states = ach.writer.states
    ids = list(states)
    g = BadgeGrant.__table__.c
    held: dict[int, dict[str, list]] = {}
    for row in db.session.execute(
        select(g.member_id, g.id, g.badge, g.n, g.bonus)
        .where(among(g.member_id, ids), g.revoked_at.is_(None))
        .order_by(g.member_id, g.badge, g.n)
    ).all():
        held.setdefault(row.member_id, {}).setdefault(row.badge, []).append(row)
    e = LedgerEntry.__table__.c
    categories: dict[int, dict[str, int]] = {}
    for member_id, category, points in db.session.execute(
        select(e.member_id, e.category, func.sum(e.points))
        .where(among(e.member_id, ids), e.kind.in_([*EARNED, LedgerKind.REVERSE]))
        .group_by(e.member_id, e.category)
    ).all():
        if points:
            categories.setdefault(member_id, {})[category] = int(points)
    earning = {str(k) for k in (*EARNED, LedgerKind.REVERSE)}
    for row in pending:
        if row["kind"] in earning and row["points"]:
            mine = categories.setdefault(row["member_id"], {})
            mine[row["category"]] = mine.get(row["category"], 0) + row["points"]
    for member_id in ids:
        state, mine = states[member_id], held.get(member_id, {})
        state.progress = progress_from(
            ach.rules, events.get(member_id, ()), categories.get(member_id, {}),
            {k: len(v) for k, v in mine.items()}, emergencies,
        )  # fmt: skip
        _bring_in_line(ach, state, facts[member_id], mine, report)
    report["members"] += len(ids)
    report["granted"] += len(ach.grants)
    report["levels"] += len(ach.level_changes)


def _bring_in_line(ach: Achievements, state: MemberState, facts, held: dict[str, list],
                   report: dict) -> None:  # fmt: skip
    """Withdraw the grants the member's progress no longer earns, then settle."""
    trigger = Trigger(org=facts.primary_org, occurred_at=ach.now)
    for badge in badges_in_force(ach.rules, facts):
        kind = BADGE_KINDS[badge.kind]
        if kind.measure is None:
            continue
        key = badge_key(badge)
        value = kind.measure(badge.params, state.progress, state.lifetime)
        due = grants_due(badge.params["at_least"], badge.repeat_every, badge.repeat_max, value)
        have = held.get(key, [])
        for row in have[due:] if due < len(have) else ():
            _revoke(state, ach.writer, row, key, ach.now, facts.primary_org)
            report["revoked"] += 1
        if due < len(have):
            state.progress["b"][key] = due
    ach.settle(state, facts, trigger)


def _revoke(state: MemberState, writer, row, key: str, now, org: str) -> None:
    """Withdraw a grant; reverse its bonus, if it had one."""
    db.session.execute(
        update(BadgeGrant)
        .where(BadgeGrant.id == row.id)
        .values(revoked_at=now, revoked_reason="重新核算后条件不再满足")
    )
    if not row.bonus:
        return
    bonus_id = db.session.scalar(
        select(LedgerEntry.id).where(
            LedgerEntry.member_id == state.id, LedgerEntry.ref == f"badge:{key}#{row.n}"
        )
    )
    writer.append(
        state.id,
        -row.bonus,
        LedgerKind.REVERSE,
        org_code=org,
        category="other",
        created_at=now,
        occurred_at=now,
        reason=f"徽章奖励撤回：重新核算后不再满足条件（-{row.bonus} 分）",
        explanation={"badge": key, "n": row.n},
        reverses_id=bonus_id,
        reverses_earning=True,
        ref=f"badge-revoke:{key}#{row.n}",
    )
