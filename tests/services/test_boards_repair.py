"""The boards repair themselves: when Redis loses them (a flush, a restart without
persistence) the next live update asks for one rebuild; a rebuild's flag is a lease its
thread renews, so one whose worker died lets go within the lease and its retry can run."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs import QUEUES, queue
from app.models import LedgerEntry
from app.redis_client import get_redis, is_embedded
from app.services.boards import rebuild
from app.services.boards.keys import board_key
from app.services.boards.live import BUILT, REBUILD_FLAG, REPAIR_ASKED
from app.services.boards.rebuild import rebuild_boards

from ..jobs.test_jobs import run_queued_jobs
from ..partner_api import hazard

TZ = "Asia/Shanghai"


def _province(ref_member: int | None = None) -> dict[int, int]:
    rows = get_redis().zrange(board_key("sx", "all", "total"), 0, -1, withscores=True)
    return {int(m): int(s) for m, s in rows}


def _ledger() -> dict[int, int]:
    rows = db.session.execute(
        select(LedgerEntry.member_id, func.sum(LedgerEntry.points)).group_by(LedgerEntry.member_id)
    )
    return {m: int(p) for m, p in rows}


def test_boards_lost_by_redis_are_rebuilt_once_after_the_next_update(partner_api, rider):
    for i in range(3):
        assert partner_api.post_event(hazard(f"h{i}", days_ago=1 + i)).status_code == 201
    assert _province() == _ledger()
    get_redis().flushdb()  # Redis lost everything, and says nothing
    for i in range(3, 6):  # ingestion carries on
        assert partner_api.post_event(hazard(f"h{i}", days_ago=1 + i)).status_code == 201
    if not is_embedded():  # with a real Redis the repair waits for a worker: exactly one
        assert sum(queue(q).count for q in QUEUES) == 1
        run_queued_jobs()
    assert _province() == _ledger()  # the points from before the loss are back
    assert get_redis().exists(BUILT) and not get_redis().exists(REPAIR_ASKED)
    # and the boards are whole again: the next update asks for nothing
    assert partner_api.post_event(hazard("h9")).status_code == 201
    assert sum(queue(q).count for q in QUEUES) == 0 and _province() == _ledger()


def test_a_dead_rebuilds_flag_lets_go_within_the_lease(partner_api, rider, monkeypatch):
    monkeypatch.setattr(rebuild, "LEASE_SECONDS", 1)
    partner_api.post_event(hazard("h1"))
    get_redis().set(REBUILD_FLAG, "dead-worker", ex=1)  # a rebuild whose worker was killed
    with pytest.raises(RuntimeError, match="another leaderboard rebuild is running"):
        rebuild_boards(get_redis(), TZ)
    time.sleep(1.2)
    report = rebuild_boards(get_redis(), TZ)  # the lease ran out: the retry runs
    assert report.boards > 0 and not get_redis().exists(REBUILD_FLAG)
    assert _province() == _ledger()


def test_a_long_rebuild_keeps_renewing_its_lease(partner_api, rider, monkeypatch):
    monkeypatch.setattr(rebuild, "LEASE_SECONDS", 0.4)
    partner_api.post_event(hazard("h1"))
    slow_write = rebuild._write

    def write(*args, **kwargs):
        time.sleep(1.0)  # far longer than the lease
        return slow_write(*args, **kwargs)

    monkeypatch.setattr(rebuild, "_write", write)
    report = rebuild_boards(get_redis(), TZ)
    assert report.boards > 0 and not get_redis().exists(REBUILD_FLAG)
    assert _province() == _ledger()


def test_a_rebuild_that_lost_its_lease_installs_nothing(partner_api, rider, monkeypatch):
    monkeypatch.setattr(rebuild, "LEASE_SECONDS", 0.4)
    partner_api.post_event(hazard("h1"))
    before = _province()
    slow_write = rebuild._write
    taken = threading.Event()

    def write(client, *args, **kwargs):
        if not taken.is_set():  # another rebuild takes the flag over meanwhile
            client.set(REBUILD_FLAG, "another", ex=30)
            taken.set()
        return slow_write(client, *args, **kwargs)

    monkeypatch.setattr(rebuild, "_write", write)
    with pytest.raises(RuntimeError, match="lease"):
        rebuild_boards(get_redis(), TZ)
    assert get_redis().get(REBUILD_FLAG) in (b"another", "another")  # not ours to delete
    assert _province() == before
    assert not [k for k in get_redis().scan_iter("lb:{*") if b"~" in k or "~" in str(k)]
