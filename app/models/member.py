"""Members (riders, couriers, drivers), the partners' references to them, and cap counters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, moment, utcnow

# The part-time governance roles (domain.md) as member tags; rules read them in member.tags.
PART_TIME_ROLES = (
    "food_safety_supervisor",
    "civilisation_ambassador",
    "traffic_safety_officer",
    "grid_member",
    "building_head",
    "unit_head",
)


class Member(Base):
    """One person, however many partners know them. ``balance`` and ``lifetime_points`` are
    kept equal to their ledger in the same transaction that appends to it."""

    __tablename__ = "members"

    id: Mapped[intpk]
    display_name: Mapped[str] = mapped_column(String(100))
    # keyed HMAC of the normalised phone number; the number itself is never stored
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    party_member: Mapped[bool] = mapped_column(default=False)
    industry: Mapped[str | None] = mapped_column(String(32))
    primary_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    tags: Mapped[list] = mapped_column(default=list)
    balance: Mapped[int] = mapped_column(default=0)
    lifetime_points: Mapped[int] = mapped_column(default=0)  # earned; never lowered by spending
    ledger_seq: Mapped[int] = mapped_column(default=0)  # seq of the newest ledger entry
    ledger_head: Mapped[str] = mapped_column(String(64), default="")  # hash of that entry
    # bumped by every write of events, counters or ledger entries for this member: a writer
    # that read without a lock checks it under the lock before writing (optimistic ingest)
    version: Mapped[int] = mapped_column(default=0, server_default="0")
    level: Mapped[str | None] = mapped_column(String(64))  # never lowered by spending
    # what badges are measured on: events by type, field sums, active months and weeks,
    # emergency call-outs, points by category (see services.achievements)
    progress: Mapped[dict] = mapped_column(default=dict, server_default="{}")
    hidden: Mapped[bool] = mapped_column(default=False)  # off public leaderboards
    # an organisation said this person must not be merged with others by phone number
    no_phone_merge: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[moment] = mapped_column(default=utcnow)
    updated_at: Mapped[moment] = mapped_column(default=utcnow, onupdate=utcnow)
    erased_at: Mapped[dt.datetime | None]

    primary_org = relationship("Organisation", lazy="joined")
    orgs: Mapped[list[MemberOrg]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class MemberOrg(Base):
    """An organisation a member takes part in (the primary one included)."""

    __tablename__ = "member_orgs"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    org_code: Mapped[str] = mapped_column(String(200))


class PartnerMember(Base):
    """A partner's own identifier for a member."""

    __tablename__ = "partner_members"
    __table_args__ = (UniqueConstraint("partner_id", "ref"),)

    id: Mapped[intpk]
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    ref: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    created_at: Mapped[moment] = mapped_column(default=utcnow)

    member: Mapped[Member] = relationship(lazy="joined")


class Counter(Base):
    """What a member has earned under one cap counter in one period (the engine's counters)."""

    __tablename__ = "counters"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(300), primary_key=True)
    period: Mapped[str] = mapped_column(String(20), primary_key=True)
    points: Mapped[int] = mapped_column(default=0)
    count: Mapped[int] = mapped_column(default=0)


Index("ix_member_orgs_org", MemberOrg.org_id)
