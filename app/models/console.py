"""The organisations' console: its users and the audit log of what they changed."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, bigpk, intpk, moment, utcnow


class Role(StrEnum):
    ADMIN = "admin"  # everything in the organisation's subtree, users included
    VERIFIER = "verifier"  # confirms or rejects pending events
    STATION = "station"  # confirms redemptions at the stations of the subtree
    VIEWER = "viewer"  # reads


class ConsoleUser(Base):
    """A person at an organisation who uses the console; sees only ``org_code``'s subtree."""

    __tablename__ = "console_users"

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    org_code: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))  # scrypt, see services.console_users
    created_at: Mapped[moment] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))  # a username, or "cli"
    last_login_at: Mapped[dt.datetime | None]
    disabled_at: Mapped[dt.datetime | None]


class AuditEntry(Base):
    """One change made through the console: who, when, what, before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_org_at", "org_code", "at"),)

    id: Mapped[bigpk]
    at: Mapped[moment] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("console_users.id"))
    username: Mapped[str] = mapped_column(String(64))
    org_code: Mapped[str] = mapped_column(String(200))  # whose subtree the change is in
    action: Mapped[str] = mapped_column(String(64))  # event.approve, user.create, ...
    target: Mapped[str] = mapped_column(String(300))  # what it changed: "event:123"
    before: Mapped[dict | None]
    after: Mapped[dict | None]


class RuleVersion(Base):
    """A published rule set: every file of the rules directory as it was, so that any version
    a ledger entry names can be loaded again. The newest ``published_at`` is in force, in
    every process (``services.rules`` polls for it); publishing an older version again
    rolls back to it."""

    __tablename__ = "rule_versions"

    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    files: Mapped[dict]  # file name -> text
    published_at: Mapped[moment] = mapped_column(default=utcnow, index=True)
    published_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
