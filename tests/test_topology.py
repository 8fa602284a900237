"""The production topology, as `scripts/serve` runs it: gunicorn, an RQ worker per queue and
the scheduler under honcho, on PostgreSQL and Redis. Runs with TEST_DATABASE_URL (the second
pass of scripts/test, and CI) in a database and Redis DB of its own."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REDIS_DB = 14  # CI's tests use 13


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(port: int, method: str, path: str, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{")[0] == name and all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture
def topology(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("the production topology needs PostgreSQL and Redis: TEST_DATABASE_URL")
    import psycopg
    import redis

    server, _, name = base.rpartition("/")
    name = f"{name}_topology"
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    redis_base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13").rpartition("/")[0]
    redis_url = f"{redis_base}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"{server}/{name}",
        "REDIS_URL": redis_url,
        "SECRET_KEY": "topology-test-secret",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(ROOT / "scripts" / "serve")], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"scripts/serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if _call(port, "GET", "/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"not ready within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield proc, port, env, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(45)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        redis.Redis.from_url(redis_url).flushdb()
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _flask(env, *args) -> str:
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "flask"), "--app", "app", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_serve_runs_every_part_and_stops_cleanly(topology):
    from .partner_api import shift

    proc, port, env, log = topology
    orgs = log.parent / "orgs.csv"
    orgs.write_text("code,name,kind\nsx,山西省,province\nsx.dt,大同市,city\n", encoding="utf-8")
    _flask(env, "orgs", "import", str(orgs))
    key = _flask(env, "partners", "create", "拓扑测试", "--code", "topo").strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {key}"}
    status, body = _call(port, "PUT", "/api/v1/members/t1",
                         {"name": "王小明", "primary_org": "sx.dt"}, auth)  # fmt: skip
    assert status == 201, body
    # events through both gunicorn workers (each request may land on either)
    for i in range(20):
        status, body = _call(
            port, "POST", "/api/v1/events", shift(f"t-{i}", "t1", days_ago=1 + i % 5), auth
        )
        assert status == 201, body
    status, body = _call(
        port, "POST", "/api/v1/events", dict(shift("bad", "t1"), type="no.such"), auth
    )
    assert status == 422, body
    # a job for the boards worker, queued from the command line
    out = _flask(env, "boards", "rebuild", "--queue")
    job = re.search(r"job (\S+) queued", out).group(1)
    deadline = time.monotonic() + 60
    while json.loads(_flask(env, "jobs", job))["status"] != "finished":
        assert time.monotonic() < deadline, _flask(env, "jobs", job)
        time.sleep(0.5)
    # /metrics adds up every process: both gunicorn workers and the RQ workers
    status, text = _call(port, "GET", "/metrics")
    assert status == 200
    assert _metric(text, "pp_events_total", type="pioneer.shift", outcome="accepted") == 20
    assert _metric(text, "pp_events_total", outcome="rejected") == 1
    assert _metric(text, "pp_ingest_seconds_count", endpoint="event") == 21
    # two rebuilds on the boards worker, one after the other: the repair the first event asked
    # for (a new Redis holds no boards yet), then the one queued here
    assert _metric(text, "pp_board_rebuilds_total") == 2
    assert _metric(text, "pp_job_seconds_count", job="rebuild_boards_job", outcome="finished") == 2
    assert 'pp_queue_depth{queue="boards"} 0.0' in text
    served = {int(p) for p in re.findall(r"\[(\d+)\] \[INFO\] Booting worker", log.read_text())}
    assert len(served) == 2  # WEB_CONCURRENCY
    text = log.read_text()
    for part in ("web.1", "worker_default.1", "worker_boards.1", "scheduler.1"):
        assert f"{part} " in text or f"{part}|" in text.replace(" ", ""), part
    assert key not in text and "Traceback" not in text
    # SIGTERM stops every process
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(45) is not None
    stopped = log.read_text()
    assert "web.1 stopped" in stopped and "scheduler.1 stopped" in stopped
