"""The production topology in a test (a pytest plugin, see tests/conftest.py): `scripts/serve`
(gunicorn, an RQ worker per queue and the scheduler under honcho) on PostgreSQL and Redis, in
a database and a Redis DB of its own. Only with TEST_DATABASE_URL (the second pass of
scripts/test, and CI); skipped on the embedded default, which has no processes to run."""

from __future__ import annotations

import contextlib
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text: str, name: str, **labels) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{")[0] == name and all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


class Topology:
    """One `scripts/serve` with its own database and Redis DB."""

    def __init__(self, tmp_path: Path, base_url: str, redis_url: str, env: dict | None = None):
        import psycopg
        import redis

        server, _, name = base_url.rpartition("/")
        self.name = f"{name}_topology"
        self.admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        self.dsn = server.replace("postgresql+psycopg://", "postgresql://") + f"/{self.name}"
        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url)
        self.redis.flushdb()
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": self.dsn,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "topology-test-secret",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    # --- running -----------------------------------------------------------------------
    def start(self, ready_seconds: float = 120) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([str(ROOT / "scripts" / "serve")], cwd=ROOT,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + ready_seconds
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"scripts/serve exited with {self.proc.returncode}:\n{self.text()}")
            with contextlib.suppress(OSError):
                if self.call("GET", "/readyz", timeout=2)[0] == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"not ready within {ready_seconds} s:\n{self.text()[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(45)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()

    def close(self) -> None:
        import psycopg

        self.stop()
        with contextlib.suppress(Exception):
            self.redis.flushdb()
        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def processes(self, pattern: str) -> list[int]:
        """Pids of the topology's processes whose command line contains ``pattern``."""
        parents: dict[int, int] = {}
        commands: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
                commands[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )

        def below(pid: int) -> bool:
            while pid > 1:
                if pid == self.proc.pid:
                    return True
                pid = parents.get(pid, 0)
            return False

        return [p for p, cmd in commands.items() if pattern in cmd and below(p)]

    # --- talking to it -----------------------------------------------------------------
    def call(self, method: str, path: str, body=None, headers=None, timeout: float = 10):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def flask(self, *args: str, env: dict | None = None) -> str:
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "flask"), "--app", "app", *args],
                              cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=180)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def sql(self, query: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    # --- a partner and its members -----------------------------------------------------
    def partner(self) -> dict:
        """Two organisations, a partner, and its Authorization header."""
        orgs = self.log.parent / "orgs.csv"
        orgs.write_text("code,name,kind\nsx,山西省,province\nsx.dt,大同市,city\n", "utf-8")
        self.flask("orgs", "import", str(orgs))
        key = (
            self.flask("partners", "create", "拓扑测试", "--code", "topo").strip().splitlines()[-1]
        )
        self.key = key
        return {"Authorization": f"Bearer {key}"}

    def check_ledger(self, acknowledged: dict[str, int]) -> None:
        """Every event that got a 2xx is stored once with the points it was answered with, and
        its ledger entries add up to them; every balance is the sum of its ledger."""
        stored = dict(self.sql("SELECT partner_event_id, count(*) FROM events GROUP BY 1"))
        assert all(stored.get(e) == 1 for e in acknowledged), "an acknowledged event is missing"
        credited = dict(
            self.sql(
                "SELECT e.partner_event_id, coalesce(sum(l.points), 0) FROM events e "
                "LEFT JOIN ledger_entries l ON l.event_id = e.id AND l.kind = 'award' GROUP BY 1"
            )
        )
        wrong = {e: (p, credited.get(e)) for e, p in acknowledged.items() if credited.get(e) != p}
        assert not wrong, f"ledger differs from the answers: {list(wrong.items())[:5]}"
        unbalanced = self.sql(
            "SELECT m.id, m.balance, coalesce(sum(l.points), 0) FROM members m "
            "LEFT JOIN ledger_entries l ON l.member_id = m.id GROUP BY m.id, m.balance "
            "HAVING m.balance <> coalesce(sum(l.points), 0)"
        )
        assert not unbalanced, unbalanced[:5]

    def boards_exact(self) -> bool:
        """The province's all-time board holds, for every member, the sum of their board
        points in the ledger (spending moves no board)."""
        from app.services.boards.keys import BOARD_KINDS

        expected = {
            str(m): int(p)
            for m, p in self.sql(
                "SELECT member_id, sum(points) FROM ledger_entries WHERE kind = ANY(%s) "
                "GROUP BY 1 HAVING sum(points) <> 0",
                [str(k) for k in BOARD_KINDS],
            )
        }
        rows = self.redis.zrange("lb:{sx|all|total}", 0, -1, withscores=True)
        return {m.decode(): int(s) for m, s in rows} == expected


@pytest.fixture
def topology(tmp_path):
    """A factory: ``topology(env)`` starts the topology with extra environment variables; it
    is stopped and its database and Redis DB dropped after the test."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("the production topology needs PostgreSQL and Redis: TEST_DATABASE_URL")
    redis_base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13").rpartition("/")[0]
    started: list[Topology] = []

    def start(env: dict | None = None, database_url: str | None = None) -> Topology:
        t = Topology(tmp_path, base, f"{redis_base}/{REDIS_DB}", env)
        if database_url:  # "{name}": this topology's database
            t.env["DATABASE_URL"] = database_url.format(name=t.name)
        started.append(t)
        t.start()
        return t

    yield start
    for t in started:
        t.close()
