"""Appending to the ledger, and reading it back.

``LedgerWriter`` makes every ledger entry: each gets the next ``seq`` of its member, the
previous entry's hash and its own, and moves the member's balance and lifetime points; the
store that inserts the entries (``services.ingest.store``/``store_pg``) writes those totals in
the same transaction, under the member's row lock, so a balance always equals the sum of its
entries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, bindparam, func, insert, select, update

from ..engine.periods import period_bounds, zone
from ..extensions import db
from ..models import EARNING_KINDS, BadgeGrant, LedgerEntry, LevelChange, Member
from ..models.base import utcnow
from ..models.ledger import row_hash
from .bulk import among, insert_rows


@dataclass
class MemberState:
    """A member's running totals while a transaction appends to its ledger."""

    id: int
    balance: int
    lifetime: int
    seq: int
    head: str
    version: int = 0  # members.version as read; the write sets it one higher
    level: str | None = None
    progress: dict = field(default_factory=dict)  # what badges are measured on


@dataclass
class LedgerWriter:
    """Collects entries for many members, to be chained (``chain``) and inserted at once.

    The caller puts the members' current state in ``states`` and, when it writes, makes sure
    nobody moved them meanwhile (a row lock, or the version check of the optimistic store)."""

    states: dict[int, MemberState] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)

    def append(self, member_id: int, points: int, kind: str, **fields) -> dict:
        """Queue one entry for a locked member; return the row (its id is set on write)."""
        created = fields.pop("created_at", None) or utcnow()
        row = {
            "member_id": member_id,
            "points": points,
            "kind": str(kind),
            "event_id": fields.get("event_id"),
            "rule": fields.get("rule"),
            "rules_version": fields.get("rules_version"),
            "org_code": fields["org_code"],
            "partner_id": fields.get("partner_id"),
            "category": str(fields.get("category", "other")),
            "occurred_at": fields.get("occurred_at") or created,
            "created_at": created,
            "reason": fields["reason"],
            "explanation": fields.get("explanation"),
            "reverses_id": fields.get("reverses_id"),
            "ref": fields.get("ref"),
        }
        if "event_ref" in fields:  # the partner's event id: the store sets event_id from it
            row["event_ref"] = fields["event_ref"]
        earning = kind in EARNING_KINDS or (kind == "reverse" and fields.get("reverses_earning"))
        return self.add(row, earning)

    def add(self, row: dict, earning: bool) -> dict:
        """Queue a row already made with every column ``append`` fills (bulk writers):
        it gets the member's next ``seq``; ``earning`` moves the lifetime points too."""
        state = self.states[row["member_id"]]
        state.seq += 1
        row["seq"] = state.seq
        state.balance += row["points"]
        if earning:
            state.lifetime += row["points"]
        self.rows.append(row)
        return row

    def chain(self) -> list[dict]:
        """Give the queued entries their hashes and return them (the queue is emptied).

        Called when every hashed field, the event id too, is final."""
        rows, self.rows = self.rows, []
        for row in rows:
            state = self.states[row["member_id"]]
            row["prev_hash"] = state.head
            row["hash"] = state.head = row_hash(state.head, row)
        return rows


def member_row(state: MemberState) -> dict:
    """A member's new totals, with ``version`` the one read (the write adds one)."""
    return {
        "id": state.id,
        "version": state.version,
        "balance": state.balance,
        "lifetime_points": state.lifetime,
        "ledger_seq": state.seq,
        "ledger_head": state.head,
        "level": state.level,
        "progress": state.progress,
    }


def update_members(states: list[MemberState]) -> None:
    """Write the totals of members whose rows this transaction has locked, and bump their
    version."""
    members = Member.__table__
    db.session.connection().execute(
        update(members)
        .where(members.c.id == bindparam("m_id"))
        .values(
            balance=bindparam("m_balance"),
            lifetime_points=bindparam("m_lifetime"),
            ledger_seq=bindparam("m_seq"),
            ledger_head=bindparam("m_head"),
            level=bindparam("m_level"),
            progress=bindparam("m_progress", type_=members.c.progress.type),
            version=members.c.version + 1,
        ),
        [{"m_id": s.id, "m_balance": s.balance, "m_lifetime": s.lifetime, "m_seq": s.seq,
          "m_head": s.head, "m_level": s.level, "m_progress": s.progress} for s in states],
    )  # fmt: skip
    for s in states:
        s.version += 1


def lock_members(ids) -> dict[int, MemberState]:
    """Lock members' rows in id order (so two writers never deadlock) for the session's
    transaction and return their state: for ledger writers other than ingest (redemptions,
    refunds, expiry, badges granted by jobs). On SQLite the transaction's ``BEGIN IMMEDIATE``
    is the lock."""
    m = Member.__table__.c
    query = (
        select(m.id, m.balance, m.lifetime_points, m.ledger_seq, m.ledger_head, m.version,
               m.level, m.progress)
        .where(among(m.id, sorted(set(ids))))
        .order_by(m.id)
        .with_for_update()
    )  # fmt: skip
    return {
        r.id: MemberState(r.id, r.balance, r.lifetime_points, r.ledger_seq, r.ledger_head,
                          r.version, r.level, dict(r.progress or {}))
        for r in db.session.execute(query)
    }  # fmt: skip


def write(writer: LedgerWriter, grants=(), level_changes=(), returning: bool = True) -> list[dict]:
    """Insert what ``writer`` queued (and the badge grants and level changes that go with it)
    and move its members' totals; return the entries, each with its ``id`` unless
    ``returning`` is false (bulk writers that need no ids). The members must have been
    locked by ``lock_members`` in this transaction."""
    conn = db.session.connection()
    rows = writer.chain()
    for row in (*rows, *grants, *level_changes):
        row.pop("event_ref", None)
        row.setdefault("event_id", None)
    if rows and not returning:
        insert_rows(LedgerEntry.__table__, rows)
    elif rows:
        ids = conn.execute(
            insert(LedgerEntry.__table__).returning(LedgerEntry.id, sort_by_parameter_order=True),
            rows,
        ).scalars()
        for row, id_ in zip(rows, ids, strict=True):
            row["id"] = id_
    if grants:
        conn.execute(insert(BadgeGrant.__table__), list(grants))
    if level_changes:
        conn.execute(insert(LevelChange.__table__), list(level_changes))
    update_members(list(writer.states.values()))
    return rows


def period_totals(member_id: int, tz_name: str, now: dt.datetime | None = None) -> dict:
    """Points earned this week and this month (by when the activity happened), by category."""
    from ..engine import Per

    tz = zone(tz_name)
    local = (now or utcnow()).astimezone(tz).date()
    out = {}
    for name, per in (("week", Per.WEEK), ("month", Per.MONTH)):
        start, end = period_bounds(per, local, tz)
        rows = db.session.execute(
            select(LedgerEntry.category, func.sum(LedgerEntry.points))
            .where(
                and_(
                    LedgerEntry.member_id == member_id,
                    LedgerEntry.occurred_at >= start,
                    LedgerEntry.occurred_at < end,
                    LedgerEntry.kind.in_(["award", "bonus", "reverse", "adjust"]),
                )
            )
            .group_by(LedgerEntry.category)
        )
        by_category = {category: int(points or 0) for category, points in rows}
        out[name] = {
            "start": start.date().isoformat(),
            "total": sum(by_category.values()),
            "by_category": by_category,
        }
    return out


def ledger_page(member_id: int, before: int | None, limit: int) -> list[LedgerEntry]:
    """Newest first; ``before`` is the id of the last entry of the previous page."""
    query = select(LedgerEntry).where(LedgerEntry.member_id == member_id)
    if before is not None:
        query = query.where(LedgerEntry.id < before)
    return list(db.session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit)))
