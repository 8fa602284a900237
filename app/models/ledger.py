"""The ledger: append-only, the source of truth for every point.

Each member's entries form a hash chain: entry ``seq`` n stores the hash of entry n-1 and its
own hash over its content, and the member row keeps the newest hash, so an edited, removed or
inserted entry is detectable (``flask ledger verify``). A correction is a new ``reverse`` entry.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigID, bigpk, moment


class LedgerKind(StrEnum):
    AWARD = "award"  # points for an event under a rule
    BONUS = "bonus"  # level-up or badge bonus
    REDEEM = "redeem"  # spent on a reward
    REFUND = "refund"  # a redemption cancelled or expired
    REVERSE = "reverse"  # undoes an earlier entry (recalculation, correction)
    ADJUST = "adjust"  # manual adjustment by an organisation, with a reason
    EXPIRE = "expire"  # points expired


# kinds that count towards lifetime points (spending never lowers them)
EARNING_KINDS = frozenset({LedgerKind.AWARD, LedgerKind.BONUS, LedgerKind.ADJUST})


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("member_id", "seq"),
        Index("ix_ledger_entries_org_occurred", "org_code", "occurred_at"),
        Index("ix_ledger_entries_event", "event_id"),
    )

    id: Mapped[bigpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    seq: Mapped[int]  # 1, 2, 3 ... per member
    points: Mapped[int]  # signed
    kind: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("events.id"))
    rule: Mapped[str | None] = mapped_column(String(300))  # the rule's key, "sx:pioneer-shift"
    rules_version: Mapped[str | None] = mapped_column(String(16))
    org_code: Mapped[str] = mapped_column(String(200))  # where the activity happened
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    category: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[moment]  # when the activity happened: decides its leaderboard period
    created_at: Mapped[moment]
    reason: Mapped[str] = mapped_column(Text)  # Chinese, for riders; explanation has the data
    explanation: Mapped[dict | None]
    reverses_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("ledger_entries.id"))
    ref: Mapped[str | None] = mapped_column(String(64))  # redemption code, badge grant, ...
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def content_hash(self) -> str:
        """SHA-256 over this entry's content and the previous entry's hash."""
        return entry_hash(self.prev_hash, ledger_hash_fields({k: getattr(self, k) for k in HASHED}))


# what an entry's hash covers (everything but its id, its explanation data and the hashes)
HASHED = (
    "member_id", "seq", "points", "kind", "event_id", "rule", "rules_version", "org_code",
    "category", "occurred_at", "created_at", "reason", "reverses_id", "ref",
)  # fmt: skip


_HASHED_SORTED = tuple(sorted(HASHED))  # the JSON's key order: as sort_keys would give
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def ledger_hash_fields(row) -> dict:
    """The hashed fields, in the order the hash's JSON has them (sorted by name)."""
    out = {}
    for k in _HASHED_SORTED:
        v = row[k]
        out[k] = _iso(v) if isinstance(v, dt.datetime) else v
    return out


@functools.lru_cache(maxsize=8192)  # a batch's entries share created_at and many occurred_at
def _iso(moment_: dt.datetime) -> str:
    return moment_.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_KEY_PREFIXES = tuple(
    ("{" if i == 0 else ",") + json.dumps(k) + ":" for i, k in enumerate(_HASHED_SORTED)
)
_encode_str = json.encoder.encode_basestring  # the string encoder of ensure_ascii=False


def row_hash(prev_hash: str, row) -> str:
    """``entry_hash(prev_hash, ledger_hash_fields(row))``, the same JSON written directly
    (no dict, no general encoder): what the ledger writer hashes every entry with."""
    parts = [prev_hash, "\n"]
    for prefix, key in zip(_KEY_PREFIXES, _HASHED_SORTED, strict=True):
        value = row[key]
        kind = type(value)
        if kind is str:
            text = _encode_str(value)
        elif kind is int:
            text = int.__repr__(value)
        elif value is None:
            text = "null"
        elif isinstance(value, dt.datetime):
            text = '"' + _iso(value) + '"'
        else:  # anything else exactly as the encoder writes it
            text = _ENCODE(value)
        parts.append(prefix)
        parts.append(text)
    parts.append("}")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def entry_hash(prev_hash: str, fields: dict) -> str:
    text = _ENCODE(fields if list(fields) == list(_HASHED_SORTED) else dict(sorted(fields.items())))
    return hashlib.sha256((prev_hash + "\n" + text).encode()).hexdigest()
