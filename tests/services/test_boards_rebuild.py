"""Rebuilding boards from the ledger: the same boards as the live path, readers never see a
half-written board, and updates that arrive during a rebuild count exactly once."""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

import app.services.boards as boards
from app.engine.model import Category
from app.extensions import db
from app.models import LedgerEntry, Member
from app.models.ledger import LedgerKind
from app.redis_client import get_redis
from app.services.boards import rebuild
from app.services.boards.keys import BOARD_KINDS, board_key, tie_fraction
from app.services.boards.live import BUILT, JOURNAL, REBUILD_FLAG
from app.services.boards.rebuild import rebuild_boards

from ..factories import LedgerEntryFactory, MemberFactory, OrganisationFactory, PartnerFactory
from .boards_support import TZ, all_boards, apply_at, at, board, text

NOW = at("2026-12-02 10:00:00")  # a Wednesday: 2026-W49 and W48, 2026-12 and 11 are open
ROW = ("member_id", "seq", "points", "kind", "org_code", "category", "partner_id",
       "occurred_at", "created_at")  # fmt: skip


def row(entry: LedgerEntry | dict) -> dict:
    """A ledger row as the ledger writer hands it to ``board_entries``."""
    if isinstance(entry, dict):
        return {k: entry.get(k) for k in ROW}
    return {k: getattr(entry, k) for k in ROW}


@pytest.fixture
def people(app_ctx):
    """Four members (two in delivery, one in express, one in no industry), two partners."""
    members = [MemberFactory(industry=i) for i in ("delivery", "express", None, "delivery")]
    partners = [PartnerFactory(code="meituan"), PartnerFactory(code="eleme")]
    db.session.commit()
    return [(m.id, m.industry) for m in members], [(p.id, p.code) for p in partners]


# --- live and rebuilt boards are the same ------------------------------------------------

ORGS = ["sx.ty.xiaodian.pingyang.station-01", "sx.ty.xiaodian.pingyang.station-02",
        "sx.ty.xiaodian", "sx.dt.pingcheng"]  # fmt: skip
BOUNDARIES = [
    at(t) for t in (
        "2026-11-29 23:59:59", "2026-11-30 00:00:00",  # the week turns (W48 | W49)
        "2026-11-30 23:59:59", "2026-12-01 00:00:00",  # the month turns
        "2026-11-22 23:59:59", "2026-11-23 00:00:00",  # W47 (closed) | W48 (open)
        "2026-10-31 23:59:59", "2026-11-01 00:00:00",  # October: only the year and all time
        "2025-12-31 23:59:59", "2024-12-31 23:59:59",  # last year is open, the one before not
        "2026-12-02 10:00:00",
    )
]  # fmt: skip
FIRST = at("2026-10-25 00:00:00")
MOMENTS = st.one_of(
    st.sampled_from(BOUNDARIES),
    st.integers(0, int((NOW - FIRST).total_seconds())).map(
        lambda s: FIRST + dt.timedelta(seconds=s)
    ),
)
KINDS = [LedgerKind.AWARD, LedgerKind.AWARD, LedgerKind.BONUS, LedgerKind.REVERSE,
         LedgerKind.ADJUST, LedgerKind.REDEEM, LedgerKind.EXPIRE, LedgerKind.REFUND]  # fmt: skip
NEGATIVE = {LedgerKind.REVERSE, LedgerKind.REDEEM, LedgerKind.EXPIRE}
LINE = st.fixed_dictionaries(
    {
        "member": st.integers(0, 3),
        "org_code": st.sampled_from(ORGS),
        "category": st.sampled_from([c.value for c in Category]),
        "kind": st.sampled_from(KINDS),
        # few values, so that totals often meet (ties) and cancel out (zero)
        "points": st.one_of(st.sampled_from([0, 5, 10]), st.integers(-30, 30)),
        "occurred_at": MOMENTS,
        "after_ms": st.integers(0, 3000),  # 0: in the same second as the one before
        "partner": st.booleans(),
    }
)
# one batch: the entries of one transaction, reported by one partner (or by none)
BATCHES = st.lists(
    st.tuples(st.sampled_from([None, 0, 1]), st.lists(LINE, min_size=1, max_size=4)),
    min_size=1,
    max_size=8,
)


def signed(kind: str, points: int) -> int:
    if kind == LedgerKind.ADJUST:
        return points
    return -abs(points) if kind in NEGATIVE else abs(points)


@settings(max_examples=int(os.environ.get("BOARD_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(batches=BATCHES)
def test_a_rebuild_gives_exactly_the_boards_the_live_updates_made(people, batches):
    members, partners = people
    industry = dict(members)
    client = get_redis()
    client.flushdb()
    client.set(BUILT, "test")  # empty boards of an empty ledger: nothing lost to repair
    db.session.execute(delete(LedgerEntry))
    db.session.commit()

    seqs: dict[int, int] = defaultdict(int)
    created = NOW - dt.timedelta(hours=1)
    written = []
    for partner, lines in batches:
        rows = []
        for line in lines:
            member_id = members[line["member"]][0]
            seqs[member_id] += 1
            created += dt.timedelta(milliseconds=line["after_ms"])
            by_partner = partner is not None and line["partner"]
            entry = LedgerEntryFactory(
                member_id=member_id,
                seq=seqs[member_id],
                points=signed(line["kind"], line["points"]),
                kind=line["kind"],
                org_code=line["org_code"],
                category=line["category"],
                partner_id=partners[partner][0] if by_partner else None,
                occurred_at=line["occurred_at"],
                created_at=created,
            )
            rows.append(row(entry))
        written.append((partners[partner] if partner is not None else None, rows))
    db.session.commit()
    for partner, rows in written:
        codes = {partner[0]: partner[1]} if partner else {}
        assert apply_at(NOW, boards.board_entries(rows, industry.get, codes))
    live = all_boards(client)

    # spending, expiry and refunds move no board: the province's all-time board is the sum
    # of what was earned and reversed
    earned: dict[int, int] = defaultdict(int)
    for _, rows in written:
        for r in rows:
            if r["kind"] in BOARD_KINDS:
                earned[r["member_id"]] += r["points"]
    province = live.get(board_key("sx", "all", "total"), [])
    assert {int(m): math.floor(s) for m, s in province} == {m: p for m, p in earned.items() if p}

    report = rebuild_boards(client, TZ, now=NOW)
    assert all_boards(client) == live
    assert (report.drift_boards, report.drift_lines, report.dropped) == (0, 0, 0)
    assert report.boards == len(live)

    client.flushdb()  # Redis lost everything
    report = rebuild_boards(client, TZ, now=NOW)
    assert all_boards(client) == live
    assert report.boards == len(live)


@pytest.mark.parametrize(
    "transactions",
    [
        # (org, points) per entry, a list per transaction, five seconds apart
        pytest.param([[("sx.a", 10)], [("sx.b", 5)], [("sx.b", -5)]],
                     id="a-correction-elsewhere-brings-the-total-back"),
        pytest.param([[("sx.a", 10)], [("sx.b", 10)], [("sx.a", -10), ("sx.a", 10)]],
                     id="one-transaction-takes-back-and-gives-again"),
        pytest.param([[("sx.a", 5)], [("sx.a", -10), ("sx.b", 3), ("sx.a", 5)]],
                     id="one-transaction-passes-through-zero"),
        pytest.param([[("sx.a", 5)], [("sx.a", -5), ("sx.b", 3)]],
                     id="one-transaction-leaves-one-org-for-another"),
    ],
)  # fmt: skip
def test_a_rebuild_keeps_the_moment_each_total_was_last_changed(people, transactions):
    member_id = people[0][2][0]
    created = NOW - dt.timedelta(hours=1)
    seq, written = 0, []
    for entries in transactions:
        rows = []
        for org, points in entries:
            seq += 1
            created += dt.timedelta(seconds=5)
            kind = LedgerKind.AWARD if points > 0 else LedgerKind.REVERSE
            entry = LedgerEntryFactory(
                member_id=member_id,
                seq=seq,
                points=points,
                kind=kind,
                org_code=org,
                occurred_at=NOW,
                created_at=created,
            )
            rows.append(row(entry))
        written.append(rows)
    db.session.commit()
    for rows in written:
        assert apply_at(NOW, boards.board_entries(rows, lambda _: None, {}))
    client = get_redis()
    live = all_boards(client)
    total = sum(points for entries in transactions for _, points in entries)
    # every entry counts on ``sx`` and the last is the newest
    assert live[board_key("sx", "all", "total")] == [
        (str(member_id), total + tie_fraction(created))
    ]
    client.flushdb()
    rebuild_boards(client, TZ, now=NOW)
    assert all_boards(client) == live


# --- readers during a rebuild ------------------------------------------------------------


def test_a_reader_sees_the_old_board_or_the_new_one_never_part_of_one(app, app_ctx, monkeypatch):
    n = 2500  # more than one ZADD chunk
    org = OrganisationFactory(code="sx")
    db.session.execute(
        insert(Member), [{"display_name": f"骑手{i}", "primary_org_id": org.id} for i in range(n)]
    )
    ids = db.session.scalars(select(Member.id).order_by(Member.id)).all()
    start = NOW - dt.timedelta(days=1)
    db.session.execute(
        insert(LedgerEntry),
        [
            {"member_id": m, "seq": 1, "points": 2 + i % 7, "kind": "award", "org_code": "sx",
             "category": "other", "occurred_at": start, "created_at": start + dt.timedelta(seconds=i),
             "reason": "测试", "prev_hash": "", "hash": "0" * 64}
            for i, m in enumerate(ids)
        ],
    )  # fmt: skip
    db.session.commit()
    client = get_redis()
    key = board_key("sx", "all", "total")
    client.zadd(key, {str(m): 1 for m in ids[::2]})  # what Redis holds: stale, half of it
    old = board(client, key)

    copies_written, looked = threading.Event(), threading.Event()
    write = rebuild._write

    def write_then_wait(*args):
        written = write(*args)
        copies_written.set()
        assert looked.wait(30)  # hold the swap until the reader has read with the copies there
        return written

    monkeypatch.setattr(rebuild, "_write", write_then_wait)
    failures: list[BaseException] = []
    done = threading.Event()

    def run_rebuild():
        try:
            with app.app_context():
                rebuild_boards(get_redis(), TZ, now=NOW, check_drift=False)
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    seen: list[tuple] = []
    reads_while_copied = 0
    thread = threading.Thread(target=run_rebuild)
    thread.start()
    try:
        while True:
            finished = done.is_set()
            pipe = client.pipeline(transaction=True)
            pipe.zcard(key)
            pipe.zrevrange(key, 0, -1, withscores=True)
            count, lines = pipe.execute()
            lines = tuple((text(m), s) for m, s in lines)
            assert count == len(lines)
            if not seen or seen[-1] != lines:
                seen.append(lines)
            if copies_written.is_set() and not looked.is_set():
                assert lines == tuple(old)  # copies written, not swapped in: still the old one
                reads_while_copied += 1
                if reads_while_copied == 3:
                    looked.set()
            if finished:
                break
    finally:
        looked.set()
        thread.join(60)
    assert not failures, failures
    new = tuple(board(client, key))
    assert len(new) == n and new != tuple(old)
    assert seen == [tuple(old), new]  # every read: the whole old board, then the whole new one


# --- updates during a rebuild --------------------------------------------------------------


class JournalGrowsAtTheSwap:
    """A Redis client that lets one more live update in just after the rebuild has read the
    journal, before it swaps (the swap must notice and read the journal again)."""

    def __init__(self, client, update):
        self._client = client
        self._update = update

    def __getattr__(self, name):
        return getattr(self._client, name)

    def lrange(self, *args):
        out = self._client.lrange(*args)
        if self._update is not None:
            update, self._update = self._update, None
            update()
        return out


def test_updates_during_a_rebuild_count_exactly_once(people, monkeypatch):
    (m1, ind1), (m2, ind2), (m3, ind3), _ = people[0]
    industry = {m1: ind1, m2: ind2, m3: ind3}
    client = get_redis()
    common = {"org_code": "sx.ty", "category": "pioneer", "kind": "award", "partner_id": None,
           "occurred_at": NOW - dt.timedelta(hours=2)}  # fmt: skip

    def fields(member_id, seq, points, minutes_ago):
        created = NOW - dt.timedelta(minutes=minutes_ago)
        return common | {
            "member_id": member_id,
            "seq": seq,
            "points": points,
            "created_at": created,
        }

    def record(entry: dict) -> None:
        assert apply_at(NOW, boards.board_entries([row(entry)], industry.get, {}))

    def commit(entry: dict) -> None:
        with db.engine.begin() as conn:
            conn.execute(
                insert(LedgerEntry).values(reason="测试", prev_hash="", hash="0" * 64, **entry)
            )

    first = fields(m1, 1, 10, 50)
    in_snapshot = fields(m1, 2, 4, 40)  # committed before the rebuild, recorded during it
    after_snapshot = fields(m2, 1, 7, 30)  # committed and recorded during the rebuild
    at_the_swap = fields(m3, 1, 5, 20)  # committed and recorded just before the swap
    commit(first)
    record(first)
    commit(in_snapshot)
    # a commit during the rebuild is outside its snapshot (SQLite: a WAL read snapshot that
    # takes no write lock, so writers do not wait for the rebuild)
    commit_late = commit

    write = rebuild._write

    calls = []

    def write_then_ingest(*args):
        written = write(*args)  # called once per period: ingest during the first
        calls.append(1)
        if len(calls) == 1:
            assert client.get(REBUILD_FLAG)  # updates now are journalled
            record(in_snapshot)
            commit_late(after_snapshot)
            record(after_snapshot)
        return written

    monkeypatch.setattr(rebuild, "_write", write_then_ingest)

    def arrive_at_the_swap():
        commit_late(at_the_swap)
        record(at_the_swap)

    report = rebuild_boards(JournalGrowsAtTheSwap(client, arrive_at_the_swap), TZ, now=NOW)

    assert report.journal_replayed == 2  # the two the snapshot did not hold
    assert not client.exists(REBUILD_FLAG, JOURNAL)
    for scope in ("sx", "sx.ty"):
        points = {int(m): math.floor(s) for m, s in board(client, board_key(scope, "all", "total"))}
        assert points == {m1: 14, m2: 7, m3: 5}
    live = all_boards(client)
    monkeypatch.undo()
    client.flushdb()
    rebuild_boards(client, TZ, now=NOW)
    assert all_boards(client) == live  # tie-break fractions included
