"""Emergencies (平急转换) declared for a region: while one is in force, rules' emergency
multipliers and emergency-only rules apply to events in that region."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, moment, utcnow


class Emergency(Base):
    __tablename__ = "emergencies"

    id: Mapped[intpk]
    org_code: Mapped[str] = mapped_column(String(200), index=True)  # the region's root
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="")
    starts_at: Mapped[moment]
    planned_end_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]  # ended early (or on time) by an organisation
    created_at: Mapped[moment] = mapped_column(default=utcnow)

    def in_force(self, at: dt.datetime) -> bool:
        end = self.ended_at or self.planned_end_at
        return self.starts_at <= at and (end is None or at < end)
