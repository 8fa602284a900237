"""Exports for the console: member points and redemptions of a subtree in one month, as rows
and as CSV or XLSX files. Reads only; the caller writes the audit entry and commits.

A province's subtree is large, so rows come from a server-side cursor (``yield_per``) and the
CSV is written as it is read; the XLSX is built by openpyxl in write-only mode.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator

from openpyxl import Workbook
from sqlalchemy import func, select

from ..engine.model import Category
from ..engine.periods import zone
from ..extensions import db
from ..models import LedgerEntry, Member, Organisation, Redemption
from .boards.keys import BOARD_KINDS, PeriodKind, mask_name, parse_period, period_span
from .boards.read import HIDDEN_NAME
from .console_users import in_subtree

CATEGORIES = tuple(c.value for c in Category)
BATCH = 1000  # rows fetched per round trip, and written per CSV chunk


def month_span(month: str, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """``2026-11`` → the aware [start, end) of that month; ValueError for anything else."""
    kind, first = parse_period(month)
    if kind is not PeriodKind.MONTH:
        raise ValueError(f"not a month: {month!r} (2026-11)")
    return period_span(kind, first, tz_name)


def member_points(org_code: str, start: dt.datetime, end: dt.datetime) -> Iterator[tuple]:
    """Per member with board points from activity in ``org_code``'s subtree in [start, end):
    (member id, masked name, primary organisation code and name, points per category in
    ``CATEGORIES`` order, total), by member id."""
    e = LedgerEntry
    query = (
        select(e.member_id, e.category, func.sum(e.points))
        .where(
            in_subtree(e.org_code, org_code),
            e.occurred_at >= start,
            e.occurred_at < end,
            e.kind.in_([str(k) for k in BOARD_KINDS]),
        )
        .group_by(e.member_id, e.category)
        .subquery()
    )
    rows = db.session.execute(
        select(
            query.c.member_id, query.c.category, query.c[2], Member.display_name, Member.hidden,
            Member.erased_at, Organisation.code, Organisation.name,
        )
        .join(Member, Member.id == query.c.member_id)
        .join(Organisation, Organisation.id == Member.primary_org_id)
        .order_by(query.c.member_id, query.c.category),
        execution_options={"yield_per": BATCH},
    )  # fmt: skip
    current, points = None, {}
    for member_id, category, total, name, hidden, erased_at, code, org_name in rows:
        if current is not None and current[0] != member_id:
            yield _member_row(current, points)
            points = {}
        shown = HIDDEN_NAME if (hidden or erased_at) else mask_name(name)
        current = (member_id, shown, code, org_name)
        points[category] = int(total or 0)
    if current is not None:
        yield _member_row(current, points)


def _member_row(member: tuple, points: dict[str, int]) -> tuple:
    by_category = [points.get(c, 0) for c in CATEGORIES]
    return (*member, *by_category, sum(points.values()))


def redemptions(org_code: str, start: dt.datetime, end: dt.datetime,
                tz_name: str) -> Iterator[tuple]:  # fmt: skip
    """Redemptions at stations of ``org_code``'s subtree made in [start, end): (code, reward,
    station code, station name, status, created at, decided at, cost), local times, oldest
    first."""
    tz = zone(tz_name)
    r = Redemption
    rows = db.session.execute(
        select(r.code, r.name, r.org_code, Organisation.name, r.status, r.created_at,
               r.decided_at, r.cost)
        .outerjoin(Organisation, Organisation.code == r.org_code)
        .where(in_subtree(r.org_code, org_code), r.created_at >= start, r.created_at < end)
        .order_by(r.created_at, r.id),
        execution_options={"yield_per": BATCH},
    )  # fmt: skip
    for code, reward, station, station_name, status, created, decided, cost in rows:
        yield (code, reward, station, station_name or "", status, _local(created, tz),
               _local(decided, tz), cost)  # fmt: skip


def _local(moment: dt.datetime | None, tz) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def csv_chunks(header: list[str], rows: Iterable[tuple]) -> Iterator[bytes]:
    """The CSV file in UTF-8 with a byte-order mark (so Excel reads Chinese), a chunk of
    ``BATCH`` rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header)
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % BATCH == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def xlsx_bytes(title: str, header: list[str], rows: Iterable[tuple]) -> bytes:
    """An XLSX workbook of one sheet named ``title``: the header, then the rows."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
