"""Closed leaderboard periods: the final ranking of every board, kept for history and honours.

Live boards are Redis sorted sets (``app.services.boards``); when a week, month or year ends,
the close-period job copies each of its boards here, in rank order, and lets the Redis keys
expire. A period is closed once its ``BoardPeriod`` row exists.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, bigpk, moment, utcnow


class BoardPeriod(Base):
    __tablename__ = "board_periods"

    period: Mapped[str] = mapped_column(String(16), primary_key=True)  # 2026-W48, 2026-11, 2026
    kind: Mapped[str] = mapped_column(String(8))
    closed_at: Mapped[moment] = mapped_column(default=utcnow)
    boards: Mapped[int] = mapped_column(default=0)
    rows: Mapped[int] = mapped_column(default=0)
    badges_at: Mapped[dt.datetime | None]  # when its rank badges were granted


class BoardArchive(Base):
    """One line of a closed board: a member on a member board, an organisation on a board
    of children (``board`` = ``lb`` or ``lbo``)."""

    __tablename__ = "board_archives"
    __table_args__ = (
        Index("ix_board_archives_board", "scope", "period", "category", "board", "position"),
        Index("ix_board_archives_member", "member_id", "period"),
    )

    id: Mapped[bigpk]
    board: Mapped[str] = mapped_column(String(4))
    scope: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    position: Mapped[int]  # 1, 2, 3 ... in list order
    rank: Mapped[int]  # shared by equal points: 1, 2, 2, 4
    member_id: Mapped[int | None]
    org_code: Mapped[str | None] = mapped_column(String(200))
    points: Mapped[int]
