"""Declarative base, naming convention and the column types every model shares."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, mapped_column, registry

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A moment, stored in UTC and always returned timezone-aware.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC and given their zone back on the way out. Naive values are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# BIGINT on PostgreSQL; INTEGER on SQLite so the key is its rowid and autoincrements
BigID = BigInteger().with_variant(Integer(), "sqlite")

intpk = Annotated[int, mapped_column(primary_key=True)]
bigpk = Annotated[int, mapped_column(BigID, primary_key=True)]
code = Annotated[str, mapped_column(String(200))]
moment = Annotated[dt.datetime, mapped_column(UTCDateTime())]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    # the map lives on the registry: Flask-SQLAlchemy subclasses this base, and SQLAlchemy
    # refuses a subclass that has both a registry and its own type_annotation_map
    registry = registry(
        metadata=MetaData(naming_convention=NAMING),
        type_annotation_map={dict: JSONType, list: JSONType, dt.datetime: UTCDateTime()},
    )
