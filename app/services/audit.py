"""Check the ledger against itself, and export it for an auditor to check without us.

``verify_ledger`` (``flask --app app ledger verify``, inline or as an RQ job) walks every
member's hash chain and balance and names the first broken entry of each member whose chain
does not hold. ``export_ledger`` (``flask --app app ledger export``) writes every entry with
the exact fields its hash covers, so ``scripts/verify_ledger_export.py`` — the standard library
only, none of this code — can recompute every hash (docs/operations.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from ..extensions import db
from ..models import LedgerEntry, Member
from ..models.base import utcnow
from ..models.ledger import HASHED, ledger_hash_fields

EXPORT_FORMAT = "pioneer-ledger-export/1"
HASH_RULE = (
    "sha256(prev_hash + '\\n' + JSON of fields with keys sorted, separators ',' and ':', "
    "non-ASCII as is, times as UTC 'YYYY-MM-DDTHH:MM:SS.ffffffZ'); the first entry's prev_hash "
    "is ''; a member's head is the hash of its last entry"
)


@dataclass
class VerifyReport:
    members: int = 0
    entries: int = 0
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "members": self.members,
            "entries": self.entries,
            "problems": self.problems,
        }


def verify_ledger(
    batch: int = 500, on_progress: Callable[[int, int], None] | None = None, limit: int = 100
) -> VerifyReport:
    """Walk every member's entries in ``seq`` order: consecutive sequence numbers, each entry
    linked to the previous hash and hashing to its own, the member's head and sequence equal
    to the newest entry, the balance equal to the sum. Reports at most ``limit`` problems."""
    report = VerifyReport()
    total = db.session.scalar(select(db.func.count(Member.id))) or 0
    for members in _member_batches(batch):
        entries: dict[int, list[LedgerEntry]] = {}
        for entry in db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.member_id.in_([m.id for m in members]))
            .order_by(LedgerEntry.member_id, LedgerEntry.seq)
        ):
            entries.setdefault(entry.member_id, []).append(entry)
        for m in members:
            problem = _check_member(m, entries.get(m.id, []))
            report.entries += len(entries.get(m.id, []))
            if problem and len(report.problems) < limit:
                report.problems.append(problem)
        report.members += len(members)
        db.session.expunge_all()  # keep memory flat on millions of entries
        if on_progress:
            on_progress(report.members, total)
    return report


def _check_member(member, entries: list[LedgerEntry]) -> dict | None:
    prev = ""
    balance = 0
    for expected_seq, e in enumerate(entries, start=1):
        where = {"member": member.id, "entry": e.id, "seq": e.seq}
        if e.seq != expected_seq:
            return where | {"problem": f"sequence jumps from {expected_seq - 1} to {e.seq}"}
        if e.prev_hash != prev:
            return where | {"problem": "does not link to the previous entry's hash"}
        if e.hash != e.content_hash():
            return where | {"problem": "content does not match its hash (edited?)"}
        prev = e.hash
        balance += e.points
    where = {"member": member.id, "entry": entries[-1].id if entries else None}
    if member.ledger_seq != len(entries) or member.ledger_head != prev:
        return where | {"problem": "the member's newest entry is missing or not the last one"}
    if member.balance != balance:
        return where | {"problem": f"balance {member.balance} != sum of entries {balance}"}
    return None


def export_ledger(batch: int = 500) -> Iterator[str]:
    """The whole ledger as JSON lines: a header, then for each member its entries in ``seq``
    order (``{"entry": id, "prev_hash", "hash", "fields": {what the hash covers}}``) and a
    line with its head, sequence and balance (``{"member": id, ...}``). Reads in batches of
    ``batch`` members, so memory stays flat on millions of entries."""
    yield _line({
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "hashed_fields": sorted(HASHED),
        "hash": HASH_RULE,
    })  # fmt: skip
    for members in _member_batches(batch):
        columns = [getattr(LedgerEntry, name) for name in ("id", "prev_hash", "hash", *HASHED)]
        rows = db.session.execute(
            select(*columns)
            .where(LedgerEntry.member_id.in_([m.id for m in members]))
            .order_by(LedgerEntry.member_id, LedgerEntry.seq)
        ).mappings()
        by_member: dict[int, list[str]] = {}
        for row in rows:
            by_member.setdefault(row["member_id"], []).append(_line({
                "entry": row["id"],
                "prev_hash": row["prev_hash"],
                "hash": row["hash"],
                "fields": ledger_hash_fields(row),
            }))  # fmt: skip
        for m in members:
            yield from by_member.get(m.id, [])
            yield _line(
                {"member": m.id, "seq": m.ledger_seq, "head": m.ledger_head, "balance": m.balance}
            )


def _member_batches(batch: int) -> Iterator[list]:
    """Every member's id, balance, sequence and head, ``batch`` members at a time by id."""
    last_id = 0
    while True:
        members = list(
            db.session.execute(
                select(Member.id, Member.balance, Member.ledger_seq, Member.ledger_head)
                .where(Member.id > last_id)
                .order_by(Member.id)
                .limit(batch)
            )
        )
        if not members:
            return
        last_id = members[-1].id
        yield members


def _line(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
