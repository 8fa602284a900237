"""Redemptions of rewards, and how much of each reward's stock and sponsor's budget is used.

A reward's definition lives in the rules files (``rewards:``); what has been taken of it is
database state, moved in the same transaction as the ``redeem`` ledger entry.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigID, bigpk, moment


class RedemptionStatus(StrEnum):
    PENDING = "pending"  # points taken, waiting for pickup at the station
    CONFIRMED = "confirmed"  # picked up
    CANCELLED = "cancelled"  # the member cancelled before pickup: refunded
    EXPIRED = "expired"  # not picked up in time: refunded


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_member", "member_id", "created_at"),
        Index("ix_redemptions_reward", "reward", "status"),
        Index("ix_redemptions_pending", "status", "expires_at"),
    )

    id: Mapped[bigpk]
    code: Mapped[str] = mapped_column(String(16), unique=True)  # shown at the station
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    reward: Mapped[str] = mapped_column(String(300))  # "<org>:<id>"
    org_code: Mapped[str] = mapped_column(String(200))  # the station that hands it out
    name: Mapped[str] = mapped_column(String(200))  # as it was when redeemed
    cost: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=RedemptionStatus.PENDING)
    created_at: Mapped[moment]
    expires_at: Mapped[dt.datetime | None]
    decided_at: Mapped[dt.datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))  # "partner:meituan", "member"
    # the usage rows this redemption counted in (given back on a refund)
    stock_period: Mapped[str | None] = mapped_column(String(20))
    limit_period: Mapped[str] = mapped_column(String(20))
    sponsor: Mapped[str | None] = mapped_column(String(200))
    budget_period: Mapped[str | None] = mapped_column(String(20))
    yuan: Mapped[float | None] = mapped_column(Numeric(12, 2))
    rules_version: Mapped[str] = mapped_column(String(16))
    redeem_entry_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("ledger_entries.id"))
    refund_entry_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("ledger_entries.id"))


class RewardUsage(Base):
    """How much is used of one counter in one period: a reward's stock (``reward:<key>``) or
    a sponsor's budget (``sponsor:<name>``). ``period`` is ``ever`` for totals."""

    __tablename__ = "reward_usage"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    period: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    points: Mapped[int] = mapped_column(default=0)
    yuan: Mapped[float] = mapped_column(Numeric(14, 2), default=0)
