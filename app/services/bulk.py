"""Inserting many rows at once: with COPY on PostgreSQL, by executemany elsewhere.

For bulk writers that need no ids back (a recalculation's ledger entries and counters). The
rows go in the session's transaction, like any other statement of it.
"""

from __future__ import annotations

from sqlalchemy import JSON, Table, TypeDecorator, insert

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
        if isinstance(kind, JSON):
            convert[name] = lambda v: None if v is None else Jsonb(v)
        elif isinstance(kind, TypeDecorator):  # e.g. UTCDateTime: refuses naive moments
            convert[name] = lambda v, k=kind: k.process_bind_param(v, conn.dialect)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([convert[c](row[c]) if c in convert else row[c] for c in columns])
