"""Statements over many rows at once, for jobs that work a batch at a time.

``insert_rows``: with COPY on PostgreSQL, by executemany elsewhere, for bulk writers that need
no ids back (a recalculation's ledger entries and counters); the rows go in the session's
transaction like any other statement of it. ``execute_rows``: an UPDATE or DELETE for many
rows. ``among``: an id list condition.
"""

from __future__ import annotations

import functools
import json

from sqlalchemy import JSON, BigInteger, Table, TypeDecorator, any_, cast, insert, text
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
    columns = list(rows[0])
    convert = []  # per column: None, or how its value is written
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, JSON):  # as JSON text (COPY's text format); shared dicts once
            convert.append(functools.partial(_json_text, {}))
        elif isinstance(kind, TypeDecorator):  # e.g. UTCDateTime: refuses naive moments
            convert.append(functools.partial(kind.process_bind_param, dialect=conn.dialect))
        else:
            convert.append(None)
    plain = not any(convert)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            values = [row[c] for c in columns]
            if not plain:
                values = [v if f is None else f(v) for f, v in zip(convert, values, strict=True)]
            copy.write_row(values)


def _json_text(seen: dict, value) -> str | None:
    if value is None:
        return None
    out = seen.get(id(value))
    if out is None:
        out = seen[id(value)] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return out


def execute_rows(unnest_sql: str, statement, names: tuple[str, ...], rows: list[tuple],
                 **params) -> None:  # fmt: skip
    """One statement for many rows: on PostgreSQL ``unnest_sql`` once, each of ``names`` an
    array of that column of ``rows`` (for ``unnest``); elsewhere ``statement``, whose bind
    parameters are ``names``, as an executemany. ``params``: the same for every row."""
    if not rows:
        return
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        columns = [list(column) for column in zip(*rows, strict=True)]
        conn.execute(text(unnest_sql), dict(zip(names, columns, strict=True)) | params)
        return
    conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])


def among(column, ids):
    """``column IN ids`` for many ids: ``= ANY(array)`` on PostgreSQL (one parameter, one
    plan however many), an expanding IN elsewhere."""
    ids = list(ids)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(ids, ARRAY(BigInteger)))
    return column.in_(ids)
