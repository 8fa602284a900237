"""Statements over many rows at once, for jobs that work a batch at a time.

``insert_rows``: with COPY on PostgreSQL, by executemany elsewhere, for bulk writers that need
no ids back (a recalculation's ledger entries and counters); the rows go in the session's
transaction like any other statement of it. ``among``: an id list condition.
"""

from __future__ import annotations

import functools

from sqlalchemy import JSON, BigInteger, Table, TypeDecorator, any_, cast, insert
from sqlalchemy.dialects.postgresql import ARRAY

from ..extensions import db


def insert_rows(table: Table, rows: list[dict]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``."""
    if not rows:
        return
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    from psycopg.types.json import Jsonb

    columns = list(rows[0])
    convert = {}
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, JSON):  # rows often share one dict: dumped once
            convert[name] = functools.partial(_jsonb, Jsonb, {})
        elif isinstance(kind, TypeDecorator):  # e.g. UTCDateTime: refuses naive moments
            convert[name] = lambda v, k=kind: k.process_bind_param(v, conn.dialect)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([convert[c](row[c]) if c in convert else row[c] for c in columns])


def _jsonb(jsonb, seen: dict, value):
    if value is None:
        return None
    out = seen.get(id(value))
    if out is None:
        out = seen[id(value)] = jsonb(value)
    return out


def among(column, ids):
    """``column IN ids`` for many ids: ``= ANY(array)`` on PostgreSQL (one parameter, one
    plan however many), an expanding IN elsewhere."""
    ids = list(ids)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(ids, ARRAY(BigInteger)))
    return column.in_(ids)
