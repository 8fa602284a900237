"""What points turn into for a member: level changes and badge grants, each recorded once.

The member's level and the counters badges are measured on live on the member row
(``Member.level``, ``Member.progress``) and move in the same transaction as the ledger; these
tables keep the history (when, from what, why) that pages and audits read.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigID, bigpk, moment


class LevelChange(Base):
    """A member reached a new level of the ladder in force for them."""

    __tablename__ = "level_changes"
    __table_args__ = (Index("ix_level_changes_member", "member_id", "at"),)

    id: Mapped[bigpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    from_level: Mapped[str | None] = mapped_column(String(64))
    to_level: Mapped[str] = mapped_column(String(64))
    at: Mapped[moment]
    lifetime_points: Mapped[int]  # when it was reached
    bonus: Mapped[int] = mapped_column(default=0)
    ladder_org: Mapped[str] = mapped_column(String(200))  # whose ladder
    rules_version: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("events.id"))


class BadgeGrant(Base):
    """One grant of a badge: the ``n``-th of a repeatable one. ``badge`` is the badge's key,
    ``<org that defines it>:<id>``. A grant withdrawn by a re-evaluation keeps its row, with
    ``revoked_at`` and ``revoked_reason``; its bonus is reversed in the ledger."""

    __tablename__ = "badge_grants"
    __table_args__ = (
        UniqueConstraint("member_id", "badge", "n"),
        Index("ix_badge_grants_member", "member_id", "granted_at"),
    )

    id: Mapped[bigpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    badge: Mapped[str] = mapped_column(String(300))
    n: Mapped[int]  # 1 for the first grant, 2 for the second of a repeatable badge ...
    granted_at: Mapped[moment]
    reason: Mapped[str] = mapped_column(Text)  # Chinese, for riders: "第 10 次先锋岗值守 ..."
    explanation: Mapped[dict]  # kind, threshold, value, event, period, rules version
    bonus: Mapped[int] = mapped_column(default=0)
    period: Mapped[str | None] = mapped_column(String(16))  # rank badges: the closed period
    rules_version: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("events.id"))
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(Text)
