"""Events: what partners reported, exactly once per (partner, partner's event id)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, bigpk, moment, utcnow


class EventStatus(StrEnum):
    AWARDED = "awarded"
    PENDING = "pending"  # waiting for an organisation to confirm it
    REJECTED = "rejected"  # an organisation refused it
    NO_MATCH = "no_match"  # no rule matched
    DUPLICATE = "duplicate"  # the same duty reported twice (overlapping time span)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_event_id"),
        Index("ix_events_member_type_span", "member_id", "type", "span_start"),
        Index("ix_events_org_occurred", "org_code", "occurred_at"),
    )

    id: Mapped[bigpk]
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    partner_event_id: Mapped[str] = mapped_column(String(128))
    body_hash: Mapped[str] = mapped_column(String(64))  # of the request, for replays
    type: Mapped[str] = mapped_column(String(100))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    org_code: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[moment]
    received_at: Mapped[moment] = mapped_column(default=utcnow)
    data: Mapped[dict]
    status: Mapped[str] = mapped_column(String(16))
    rules_version: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(default=0)
    span_start: Mapped[dt.datetime | None]
    span_end: Mapped[dt.datetime | None]
    response: Mapped[dict]  # the body first returned, returned again on a replay
    reason: Mapped[str | None] = mapped_column(String(500))  # rejection or duplicate reason
    decided_at: Mapped[dt.datetime | None]  # when a pending event was confirmed or rejected
