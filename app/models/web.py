"""What the rider's pages keep: login links, appeals and volunteer-hours certificates."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigID, bigpk, moment, utcnow


class LoginToken(Base):
    """A login link a partner asked for: signed, short-lived, and used at most once."""

    __tablename__ = "login_tokens"

    jti: Mapped[str] = mapped_column(String(32), primary_key=True)  # the signed link's id
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    issued_at: Mapped[moment] = mapped_column(default=utcnow)
    expires_at: Mapped[moment]
    used_at: Mapped[dt.datetime | None]


class AppealStatus(StrEnum):
    OPEN = "open"  # raised, waiting for the organisation
    ASSIGNED = "assigned"  # someone at the organisation handles it
    ANSWERED = "answered"  # the organisation answered; the rider may say if it resolved it
    RESOLVED = "resolved"  # the rider said the answer resolved it
    REOPENED = "reopened"  # the rider said it did not: back to the organisation
    ARCHIVED = "archived"


class Appeal(Base):
    """A rider's appeal (诉求) about a ledger line, or about an activity that earned nothing.

    It goes to the organisation where the activity happened (the member's primary organisation
    when there is no line); the console (issue #7) assigns, answers, passes it up the tree and
    archives it."""

    __tablename__ = "appeals"
    __table_args__ = (
        Index("ix_appeals_member", "member_id", "created_at"),
        Index("ix_appeals_org_status", "org_code", "status"),
    )

    id: Mapped[bigpk]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    org_code: Mapped[str] = mapped_column(String(200))
    ledger_entry_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("ledger_entries.id"))
    event_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("events.id"))
    kind: Mapped[str] = mapped_column(String(32))  # points, missing, other
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=AppealStatus.OPEN)
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[dt.datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(200))
    resolved: Mapped[bool | None]  # the rider's say on the answer
    feedback_at: Mapped[dt.datetime | None]
    created_at: Mapped[moment] = mapped_column(default=utcnow)
    updated_at: Mapped[moment] = mapped_column(default=utcnow, onupdate=utcnow)


class Certificate(Base):
    """A volunteer-hours certificate: verified hours of one year, checkable by its code at a
    public address that shows only the masked name, the hours and the year."""

    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("member_id", "year", "hours"),)

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    year: Mapped[int]
    hours: Mapped[float] = mapped_column(Numeric(10, 2))
    issued_at: Mapped[moment] = mapped_column(default=utcnow)
