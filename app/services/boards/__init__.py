"""Leaderboards: Redis sorted sets kept live from the ledger, rebuilt and archived by jobs.

Whoever commits ledger entries calls ``record`` (or ``record_after_commit`` inside a caller's
transaction) with what they wrote; nothing reads a board that the database has not committed.
See ``keys`` for what is ranked, ``live`` for the update, ``rebuild`` and ``archive`` for the
jobs, ``read`` for the queries.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping

import redis
from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import select

from ...extensions import db
from ...models import Partner
from ...models.base import utcnow
from ...redis_client import get_redis
from .keys import CLOSED_SET, OpenPeriods
from .live import BoardEntry, LiveBoards, increments

log = logging.getLogger(__name__)

__all__ = [
    "BoardEntry",
    "Feeder",
    "board_entries",
    "clear_closed_cache",
    "live_boards",
    "record",
    "record_after_commit",
]

_PENDING = "pioneer.board_entries"


def live_boards() -> LiveBoards:
    """This app's live updater (one per app: it remembers a Redis failure until repaired).

    A ledger writer calls it before it commits: on the embedded default, the first use of
    Redis in a process rebuilds the boards from the ledger (``redis_client``), and entries
    committed before that would be counted twice."""
    app = current_app._get_current_object()
    boards = app.extensions.get("pioneer.boards")
    if boards is None:
        boards = app.extensions.setdefault(
            "pioneer.boards", LiveBoards(get_redis(), on_repair=_ask_for_repair)
        )
    return boards


def board_entries(rows: Iterable[dict], industry_of,
                  partners: Mapping[int, str] | None = None) -> list[BoardEntry]:  # fmt: skip
    """BoardEntry for ledger rows as the ``LedgerWriter`` made them; ``partners`` (id → code)
    names the partner boards of rows that carry a ``partner_id`` (read from the database
    when not given)."""
    rows = list(rows)
    if partners is None and any(r.get("partner_id") is not None for r in rows):
        partners = dict(db.session.execute(select(Partner.id, Partner.code)).all())
    return [
        BoardEntry(
            member_id=r["member_id"],
            seq=r["seq"],
            points=r["points"],
            kind=r["kind"],
            org_code=r["org_code"],
            category=r["category"],
            partner_code=(partners or {}).get(r.get("partner_id")),
            industry=industry_of(r["member_id"]),
            occurred_at=r["occurred_at"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


def record(entries: list[BoardEntry]) -> bool:
    """Add committed entries to every board they count on. False if Redis failed (logged;
    the ledger is right and a repair rebuild will follow)."""
    if not entries:
        return True
    tz = current_app.config["APP_TIMEZONE"]
    live = live_boards()
    open_ = OpenPeriods.at(utcnow(), tz, _closed.get(live.client))
    return live.apply(increments(entries, open_, tz))


class _ClosedCache:
    """Archived periods (the Redis set ``lb:closed``), read at most once a minute per
    process: a previous week stops being live within a minute of its archive."""

    seconds = 60.0

    def __init__(self):
        self._value: frozenset[str] = frozenset()
        self._at = -1e9
        self._lock = threading.Lock()

    def get(self, client) -> frozenset[str]:
        if time.monotonic() - self._at > self.seconds:
            with self._lock:
                if time.monotonic() - self._at > self.seconds:
                    # on a Redis error the update that follows fails the same way
                    with contextlib.suppress(redis.RedisError):
                        self._value = frozenset(
                            m.decode() if isinstance(m, bytes) else m
                            for m in client.smembers(CLOSED_SET)
                        )
                    self._at = time.monotonic()
        return self._value

    def clear(self) -> None:
        self._at = -1e9


_closed = _ClosedCache()
clear_closed_cache = _closed.clear


def record_after_commit(entries: list[BoardEntry]) -> None:
    """Record ``entries`` when the session's transaction commits; forget them on rollback."""
    if not entries:
        return
    session = db.session()
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        app = current_app._get_current_object()

        def after_commit(sess):
            entries_ = sess.info.pop(_PENDING, [])
            with app.app_context():
                record(entries_)

        def after_rollback(sess):
            sess.info.pop(_PENDING, None)

        sa_event.listen(session, "after_commit", after_commit, once=True)
        sa_event.listen(session, "after_rollback", after_rollback, once=True)
    pending.extend(entries)


class Feeder:
    """Records committed entries on the boards from a thread of its own, in the order given:
    for a bulk job (a recalculation) whose Redis work can then overlap its next batch.

    ``put`` after each commit; leaving the ``with`` block waits until every batch is on the
    boards. At most ``depth`` batches wait, so a slow Redis slows the job instead of piling
    entries up in memory."""

    def __init__(self, depth: int = 2):
        self._app = current_app._get_current_object()
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="board-feeder", daemon=True)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._queue.put(None)
        self._thread.join()

    def put(self, entries: list[BoardEntry]) -> None:
        if entries:
            self._queue.put(entries)

    def _run(self) -> None:
        with self._app.app_context():
            while (entries := self._queue.get()) is not None:
                try:
                    record(entries)
                except Exception:  # record logs Redis failures itself; anything else too
                    log.exception("leaderboards not updated for %d entries", len(entries))


def _ask_for_repair() -> None:
    """Queue one repair rebuild, however many processes notice at once."""
    from ...jobs.boards import enqueue_rebuild
    from .live import REPAIR_ASKED

    if get_redis().set(REPAIR_ASKED, 1, nx=True, ex=15 * 60):
        enqueue_rebuild(reason="repair: Redis failed or lost the boards")
