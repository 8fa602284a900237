"""Where ingest reads what scoring needs and writes what scoring decided.

Two implementations of one interface: ``SessionStore`` (SQLAlchemy Core on the session's
connection, any database; the embedded SQLite default, dry runs inside other work, the demo
seed) and ``PgStore`` (``store_pg``: PostgreSQL in two statements, for the partner API).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import and_, insert, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ...engine import MemberFacts
from ...extensions import db
from ...models import (
    BadgeGrant,
    Counter,
    Event,
    EventStatus,
    LedgerEntry,
    LevelChange,
    Member,
    Organisation,
)
from ...models.member import MemberOrg, PartnerMember
from ..ledger import LedgerWriter, MemberState, update_members

# statuses whose time span counts as "already reported" for the duplicate check
SPAN_STATUSES = (EventStatus.AWARDED, EventStatus.PENDING, EventStatus.NO_MATCH)


class Retry(Exception):
    """Another transaction wrote for these members or stored one of these events first:
    undo and run the batch again."""


@dataclass
class Wanted:
    """What scoring a batch needs to read, keyed by what the partners sent: a member is
    (partner id, the partner's reference), an event (partner id, the partner's event id)."""

    refs: list[tuple[int, str]]
    event_ids: list[tuple[int, str]]
    orgs: list[str]  # organisations named by events, to check they exist
    # ((partner id, ref), type) -> lo, hi
    windows: dict[tuple[tuple[int, str], str], tuple[dt.datetime, dt.datetime]]
    periods: dict[tuple[int, str], set[str]]  # member -> period keys of its cap counters
    new_ids: int = 0  # event ids to allocate ahead (used by stores that can)


@dataclass
class Snapshot:
    """What was read."""

    # (partner id, ref) -> member id, primary org
    members: dict[tuple[int, str], tuple[int, str]] = field(default_factory=dict)
    facts: dict[int, MemberFacts] = field(default_factory=dict)
    states: dict[int, MemberState] = field(default_factory=dict)
    known_orgs: set[str] = field(default_factory=set)
    # (partner id, event id) -> body hash, response
    stored: dict[tuple[int, str], tuple[str, dict]] = field(default_factory=dict)
    spans: dict[tuple[int, str], list] = field(default_factory=dict)  # member, type -> spans
    counters: dict[int, dict] = field(default_factory=dict)  # member -> (bucket, period) -> p, n
    event_ids: list[int] = field(default_factory=list)  # allocated for new events

    def add_members(self, rows, member_orgs) -> None:
        """Take the members found (mappings with the columns of the stores' member query; a
        member known under two refs comes twice) and (member id, org code) pairs of the
        organisations they take part in."""
        others: dict[int, list[str]] = {}
        for member_id, code in member_orgs:
            others.setdefault(member_id, []).append(code)
        for row in rows:
            self.members[(row["partner_id"], row["ref"])] = (row["id"], row["primary_org"])
            if row["id"] not in self.facts:
                self.facts[row["id"]] = _member_facts(row, others.get(row["id"], ()))
                self.states[row["id"]] = _member_state(row)


@dataclass
class Writes:
    """What scoring decided: new events, ledger entries, counters' new values, and every
    member they touch (whose version moves on)."""

    events: list[dict]
    ledger: LedgerWriter
    counters: list[dict]
    members: list[MemberState]
    event_ids: list[int] = field(default_factory=list)  # allocated by the load, if any
    grants: list[dict] = field(default_factory=list)  # badge grants (services.achievements)
    level_changes: list[dict] = field(default_factory=list)


def _member_facts(row, other_orgs) -> MemberFacts:
    return MemberFacts(
        party_member=row["party_member"],
        industry=row["industry"],
        level=row["level"],
        primary_org=row["primary_org"],
        orgs=(row["primary_org"], *sorted(c for c in other_orgs if c != row["primary_org"])),
        tags=frozenset(row["tags"] or ()),
    )


def _member_state(row) -> MemberState:
    return MemberState(row["id"], row["balance"], row["lifetime_points"], row["ledger_seq"],
                       row["ledger_head"], row["version"], row["level"],
                       dict(row["progress"] or {}))  # fmt: skip


@contextmanager
def owned_transaction(target, commit: bool):
    """Run a block as the whole of ``target``'s transaction (a session or a DBAPI connection):
    commit it, or roll it back for ``commit=False`` (a dry run) or when the block raises."""
    try:
        yield
    except BaseException:
        # a connection that was lost cannot roll back: the error that lost it is the one to
        # raise (the pool drops the connection when it comes back)
        with contextlib.suppress(Exception):
            target.rollback()
        raise
    if commit:
        target.commit()
    else:
        target.rollback()


class SessionStore:
    """Reads under a lock taken first (row locks on PostgreSQL, the database lock SQLite's
    ``BEGIN IMMEDIATE`` takes), so what it writes cannot be stale. Works in the session's
    transaction: in a savepoint of it, or as the whole of it."""

    checks_versions = False

    def __init__(self, savepoint: bool):
        self.savepoint = savepoint

    def transaction(self, commit: bool):
        """A savepoint of the caller's transaction, or the whole of one."""
        if self.savepoint:
            return db.session.begin_nested()
        return owned_transaction(db.session, commit)

    def close(self) -> None:
        pass

    def load(self, wanted: Wanted, lock: bool) -> Snapshot:
        snap = Snapshot()
        conn = db.session.connection()
        if wanted.refs:
            query = (
                select(
                    PartnerMember.partner_id, PartnerMember.ref, Member.id,
                    Member.party_member, Member.industry, Member.level, Member.tags,
                    Member.balance, Member.lifetime_points,
                    Member.ledger_seq, Member.ledger_head, Member.version, Member.progress,
                    Organisation.code.label("primary_org"),
                )
                .join(Member, PartnerMember.member_id == Member.id)
                .join(Organisation, Member.primary_org_id == Organisation.id)
                .where(tuple_(PartnerMember.partner_id, PartnerMember.ref).in_(wanted.refs))
                .order_by(Member.id)
            )  # fmt: skip
            if lock:
                query = query.with_for_update(of=Member)
            rows = [row._mapping for row in conn.execute(query)]
            ids = sorted({row["id"] for row in rows})
            member_orgs = (
                conn.execute(
                    select(MemberOrg.member_id, MemberOrg.org_code).where(
                        MemberOrg.member_id.in_(ids)
                    )
                )
                if ids
                else ()
            )
            snap.add_members(rows, member_orgs)
        if wanted.orgs:
            snap.known_orgs = set(
                conn.scalars(select(Organisation.code).where(Organisation.code.in_(wanted.orgs)))
            )
        if wanted.event_ids:
            for row in conn.execute(
                select(
                    Event.partner_id, Event.partner_event_id, Event.body_hash, Event.response
                ).where(tuple_(Event.partner_id, Event.partner_event_id).in_(wanted.event_ids))
            ):
                key = (row.partner_id, row.partner_event_id)
                snap.stored[key] = (row.body_hash, row.response)
        self._spans(conn, wanted, snap)
        self._counters(conn, wanted, snap)
        return snap

    @staticmethod
    def _spans(conn, wanted: Wanted, snap: Snapshot) -> None:
        windows = [
            (snap.members[ref][0], type_, lo, hi)
            for (ref, type_), (lo, hi) in wanted.windows.items()
            if ref in snap.members
        ]
        if not windows:
            return
        query = select(Event.member_id, Event.type, Event.span_start, Event.span_end).where(
            or_(
                *(
                    and_(Event.member_id == member_id, Event.type == type_,
                         Event.span_start < hi, Event.span_end > lo)
                    for member_id, type_, lo, hi in windows
                )
            ),
            Event.status.in_(SPAN_STATUSES),
        )  # fmt: skip
        seen = set()
        for row in conn.execute(query):
            if row not in seen:  # two refs of one member ask twice
                seen.add(row)
                spans = snap.spans.setdefault((row.member_id, row.type), [])
                spans.append((row.span_start, row.span_end))

    @staticmethod
    def _counters(conn, wanted: Wanted, snap: Snapshot) -> None:
        pairs = {
            (snap.members[ref][0], period)
            for ref, periods in wanted.periods.items()
            if ref in snap.members
            for period in periods
        }
        if not pairs:
            return
        query = select(
            Counter.member_id, Counter.bucket, Counter.period, Counter.points, Counter.count
        ).where(tuple_(Counter.member_id, Counter.period).in_(sorted(pairs)))
        for row in conn.execute(query):
            mine = snap.counters.setdefault(row.member_id, {})
            mine[(row.bucket, row.period)] = (row.points, row.count)

    def save(self, writes: Writes) -> None:
        conn = db.session.connection()
        stmt = (
            upsert(Event.__table__)
            .on_conflict_do_nothing(index_elements=["partner_id", "partner_event_id"])
            .returning(
                Event.id, Event.partner_id, Event.partner_event_id, sort_by_parameter_order=True
            )
            # one multi-row statement even when some rows leave optional columns empty
            .execution_options(render_nulls=True)
        )
        ids = {
            (row.partner_id, row.partner_event_id): row.id
            for row in conn.execute(stmt, writes.events).all()
        }
        if len(ids) != len(writes.events):
            raise Retry()  # another transaction stored one of these meanwhile
        link_events(writes, ids)
        rows = writes.ledger.chain()
        if rows:
            conn.execute(insert(LedgerEntry.__table__), rows)
        if writes.grants:
            conn.execute(insert(BadgeGrant.__table__), writes.grants)
        if writes.level_changes:
            conn.execute(insert(LevelChange.__table__), writes.level_changes)
        update_members(writes.members)
        if writes.counters:
            stmt = upsert(Counter.__table__)
            stmt = stmt.on_conflict_do_update(
                index_elements=["member_id", "bucket", "period"],
                set_={"points": stmt.excluded.points, "count": stmt.excluded.count},
            )
            conn.execute(stmt, writes.counters)


def link_events(writes: Writes, ids: dict[tuple[int, str], int]) -> None:
    """Give ledger entries, badge grants and level changes the id of the event that caused
    them (``ids``: (partner id, partner's event id) -> events.id), in place of that key."""
    for row in (*writes.ledger.rows, *writes.grants, *writes.level_changes):
        ref = row.pop("event_ref", None)
        row["event_id"] = ids[ref] if ref is not None else None


def upsert(table):
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(table)
