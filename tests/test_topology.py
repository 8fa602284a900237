"""The production topology, as `scripts/serve` runs it: gunicorn, an RQ worker per queue and
the scheduler under honcho, on PostgreSQL and Redis (tests/topology.py)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .partner_api import shift
from .topology import metric


def test_serve_runs_every_part_and_stops_cleanly(topology):
    t = topology()
    auth = t.partner()
    status, body = t.call(
        "PUT", "/api/v1/members/t1", {"name": "王小明", "primary_org": "sx.dt"}, auth
    )
    assert status == 201, body
    # events through both gunicorn workers (each request may land on either)
    answered = {}
    for i in range(20):
        status, body = t.call(
            "POST", "/api/v1/events", shift(f"t-{i}", "t1", days_ago=1 + i % 5), auth
        )
        assert status == 201, body
        answered[f"t-{i}"] = json.loads(body)["points"]
    status, body = t.call("POST", "/api/v1/events", dict(shift("bad", "t1"), type="no.such"), auth)
    assert status == 422, body
    # a job for the boards worker, queued from the command line
    job = re.search(r"job (\S+) queued", t.flask("boards", "rebuild", "--queue")).group(1)
    deadline = time.monotonic() + 60
    while json.loads(t.flask("jobs", job))["status"] != "finished":
        assert time.monotonic() < deadline, t.flask("jobs", job)
        time.sleep(0.5)
    t.check_ledger(answered)
    assert t.boards_exact()
    # /metrics adds up every process: both gunicorn workers and the RQ workers
    status, text = t.call("GET", "/metrics")
    assert status == 200
    assert metric(text, "pp_events_total", type="pioneer.shift", outcome="accepted") == 20
    assert metric(text, "pp_events_total", outcome="rejected") == 1
    assert metric(text, "pp_ingest_seconds_count", endpoint="event") == 21
    # two rebuilds on the boards worker, one after the other: the repair the first event asked
    # for (a new Redis holds no boards yet), then the one queued here
    assert metric(text, "pp_board_rebuilds_total") == 2
    assert metric(text, "pp_job_seconds_count", job="rebuild_boards_job", outcome="finished") == 2
    assert 'pp_queue_depth{queue="boards"} 0.0' in text
    log = t.text()
    assert len(set(re.findall(r"\[(\d+)\] \[INFO\] Booting worker", log))) == 2  # WEB_CONCURRENCY
    for part in ("web.1", "worker_default.1", "worker_boards.1", "scheduler.1"):
        assert f"{part} " in log and f"{part} stopped" not in log, part
    assert t.key not in log and "Traceback" not in log
    # SIGTERM stops every process
    parts = t.processes("flask --app app") + t.processes("gunicorn")
    assert len(parts) >= 6  # two workers and the scheduler; gunicorn's master and two workers
    t.stop()
    stopped = t.text()
    assert "web.1 stopped" in stopped and "scheduler.1 stopped" in stopped
    assert not [pid for pid in parts if _running(pid)]


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for this container's init has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
