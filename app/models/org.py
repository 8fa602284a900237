"""Organisations: the tree by region and the industry committees, named by dotted codes."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, code, intpk, moment, utcnow


class OrgKind(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    DISTRICT = "district"
    STREET = "street"
    PARK = "park"
    COMMUNITY = "community"
    STATION = "station"
    DRIVERS_HOME = "drivers_home"
    CENTRE = "centre"
    TEAM = "team"
    INDUSTRY = "industry"
    PLATFORM = "platform"
    OTHER = "other"


class Organisation(Base):
    """A node of the tree. Its parent is implied by its code: ``sx.ty`` is below ``sx``."""

    __tablename__ = "organisations"

    id: Mapped[intpk]
    code: Mapped[code] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default=OrgKind.OTHER)
    parent_code: Mapped[str | None] = mapped_column(String(200), index=True)
    depth: Mapped[int]
    created_at: Mapped[moment] = mapped_column(default=utcnow)
    updated_at: Mapped[moment] = mapped_column(default=utcnow, onupdate=utcnow)

    @staticmethod
    def parent_of(org_code: str) -> str | None:
        return org_code.rsplit(".", 1)[0] if "." in org_code else None
