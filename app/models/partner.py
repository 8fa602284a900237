"""Partners: platform companies posting events, and their API keys (only hashes are kept)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, moment, utcnow


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # organisation codes whose subtrees the partner may report for; ["*"] for all
    allowed_orgs: Mapped[list] = mapped_column(default=lambda: ["*"])
    # event types or prefix.* patterns it may report; ["*"] for all
    allowed_types: Mapped[list] = mapped_column(default=lambda: ["*"])
    active: Mapped[bool] = mapped_column(default=True)
    # every request must carry an HMAC-SHA256 signature (app/api/signing.py); when off, a
    # signature that is sent is still checked, so a partner can try signing before it is required
    signing_required: Mapped[bool] = mapped_column(default=False, server_default="0")
    created_at: Mapped[moment] = mapped_column(default=utcnow)

    keys: Mapped[list[PartnerKey]] = relationship(back_populates="partner")

    def may_report_for(self, org_code: str) -> bool:
        return any(
            root == "*" or org_code == root or org_code.startswith(root + ".")
            for root in self.allowed_orgs
        )

    def may_report_type(self, event_type: str) -> bool:
        return any(
            p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1]))
            for p in self.allowed_types
        )


class PartnerKey(Base):
    """One API key. The key is ``pp_<key_id>_<secret>``; we keep ``key_id`` and a SHA-256 of
    the whole key. Several keys may be active at once, for rotation. Each key has its own
    signing secret, derived from ``key_id`` and the server's PARTNER_SIGNING_KEY (so it is not
    stored anywhere) and gone with the key when it is revoked."""

    __tablename__ = "partner_keys"

    id: Mapped[intpk]
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[moment] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]

    partner: Mapped[Partner] = relationship(back_populates="keys")
