"""Benchmark event ingestion over HTTP: gunicorn, PostgreSQL and Redis on this machine.

    .venv/bin/python scripts/bench/bench_ingest.py [--quick] [--profile] [--worker-class gthread]

1. Creates its own PostgreSQL database (dropped and recreated each run, dropped at the end even
   on error), migrates it with ``flask db upgrade``, imports the organisations of the shipped
   rules/ tree with ``flask orgs import`` and creates a partner with ``flask partners create``.
2. The floor: serves a bare Flask app defined here (one endpoint that parses the JSON body and
   does one INSERT into a narrow table of the same database, one transaction per request)
   under the same gunicorn settings, and posts event bodies to it from the same clients.
3. Serves the service (``app:create_app()``) under gunicorn with DATABASE_URL and REDIS_URL
   set, registers the members through the API from concurrent clients, then posts:
   single events (``/api/v1/events``), batches (``/api/v1/events/batch``), and replays of
   events already sent (each must answer 200 with the first response).
4. Verifies what was stored: events == events answered 201; award rows and points == the
   credited awards in the responses, and the rest of the ledger == the badge and level
   bonuses they report; every balance == the sum of its ledger entries.

5. With ``--profile``: posts more batches and single events in this process (Flask test
   client), counts their SQL statements and prints a cProfile breakdown of ingest.

Every phase is bounded by a count and a time limit, talks only to 127.0.0.1, and prints
throughput, p50/p99 latency, errors, its ratio to the floor and where the CPU went (gunicorn
workers, PostgreSQL backends, this load generator, the rest of the machine), with how many
PostgreSQL backends were busy and how many of them waited for a row lock. The load generator
(this process: one thread and one keep-alive connection per client; bodies encoded before
each phase) shares the machine's cores with the server and the database. When the server
runs with autovacuum off, ANALYZE runs every 10 s during the load, as autovacuum would.
Targets (issue #3): ≥ 3,000 events/s through the batch API; ≥ 400 single-event requests/s
with p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import http.client
import itertools
import json
import os
import pstats
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
DB_NAME = "pp_bench_ingest"
FLOOR_TABLE = "bench_floor"
OWN_CONNECTIONS = "bench_ingest"  # application_name of this script's monitoring connections
HOT_TABLES = "events, ledger_entries, counters, members, partner_members, member_orgs"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WINDOW_DAYS = 28  # events happened within the last four weeks
SLOT_HOURS = 5  # a member's duty spans sit in distinct 5-hour slots, so they never overlap
INDUSTRIES = ["delivery", "express", "transport", "internet"]
TAGS = [
    "food_safety_supervisor",
    "civilisation_ambassador",
    "traffic_safety_officer",
    "grid_member",
    "building_head",
]


def floor_app():
    """The floor: a bare Flask app with one endpoint that does one INSERT per request.

    Served by gunicorn from this file (``bench_ingest:floor_app()``), with one psycopg
    connection per worker thread and one committed transaction per request.
    """
    import psycopg
    from flask import Flask, request

    app = Flask("bench_floor")
    local = threading.local()
    conninfo = os.environ["BENCH_FLOOR_DSN"]

    @app.post("/floor")
    def insert():
        body = request.get_json()
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = local.conn = psycopg.connect(conninfo)
        with conn.transaction():
            (row_id,) = conn.execute(
                f"INSERT INTO {FLOOR_TABLE} (ref, member, type) VALUES (%s, %s, %s) RETURNING id",
                (body["id"], body["member"], body["type"]),
            ).fetchone()
        return {"id": row_id}, 201

    return app


# --- the server -----------------------------------------------------------------------------


class Gunicorn:
    """One gunicorn master we started, with its workers; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, target: str, port: int, args, env: dict, log: Path, pythonpath=None):
        cmd = [str(BIN / "gunicorn"), "-w", str(args.workers), "-b", f"127.0.0.1:{port}"]
        cmd += ["-k", args.worker_class, "--timeout", "120", "--error-logfile", str(log)]
        if args.worker_class == "gthread":
            cmd += ["--threads", str(args.threads)]
        if pythonpath:
            cmd += ["--pythonpath", str(pythonpath)]
        self.port = port
        self.log = log
        self.proc = subprocess.Popen([*cmd, target], cwd=ROOT, env=env)

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/bench-ready")
                conn.getresponse().read()
                conn.close()
                if len(self.workers()) >= 1:
                    return
            time.sleep(0.1)
        raise SystemExit(f"gunicorn did not answer within {seconds} s:\n{self.tail()}")

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, 20)


def stop_process(proc: subprocess.Popen, sig: int, seconds: float) -> None:
    """Send ``sig`` to a running ``proc``, wait ``seconds`` for it to end, then kill it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def children(ppid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == ppid:
                out.append(int(stat.parent.name))
    return out


def cpu_seconds(pid: int) -> float:
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields_[11]) + int(fields_[12])) / CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class CpuMeter:
    """Between ``start`` and ``stop``: CPU seconds of the gunicorn workers, of the PostgreSQL
    backends serving our database, of this process (the load generator) and of the whole
    machine; and, sampled every 50 ms, how many of those backends were running a statement
    and how many of them were waiting for a lock (a row lock of another transaction)."""

    def __init__(self, server: Gunicorn, dsn: str):
        import psycopg

        self.server = server
        self.conn = psycopg.connect(dsn, autocommit=True, application_name=OWN_CONNECTIONS)
        self.samples: list[tuple[int, int]] = []
        self.done = threading.Event()
        self.before: dict = {}
        self.thread: threading.Thread | None = None

    def _backends(self) -> list[tuple[int, str | None, str | None]]:
        return self.conn.execute(
            "SELECT pid, state, wait_event_type FROM pg_stat_activity "
            "WHERE datname = %s AND application_name <> %s",
            (DB_NAME, OWN_CONNECTIONS),
        ).fetchall()

    def _snapshot(self) -> dict:
        times = os.times()
        return {
            "app": {pid: cpu_seconds(pid) for pid in self.server.workers()},
            "pg": {pid: cpu_seconds(pid) for pid, _, _ in self._backends()},
            "gen": times.user + times.system,
            "machine": machine_ticks(),
        }

    def _sample(self) -> None:
        while not self.done.wait(0.05):
            rows = self._backends()
            active = [w for _, state, w in rows if state == "active"]
            self.samples.append((len(active), sum(w == "Lock" for w in active)))

    def start(self) -> None:
        self.samples.clear()
        self.done.clear()
        self.before = self._snapshot()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def stop(self) -> dict:
        self.done.set()
        self.thread.join()
        a, b = self.before, self._snapshot()
        out = {k: sum(v - a[k].get(pid, 0.0) for pid, v in b[k].items()) for k in ("app", "pg")}
        out["gen"] = b["gen"] - a["gen"]
        busy = b["machine"][0] - a["machine"][0]
        total = b["machine"][1] - a["machine"][1]
        out["busy"] = busy / total if total else 0.0
        out["other"] = max(busy / CLK_TCK - out["app"] - out["pg"] - out["gen"], 0.0)
        n = max(len(self.samples), 1)
        out["active"] = sum(s[0] for s in self.samples) / n
        out["lock"] = sum(s[1] for s in self.samples) / n
        return out

    def close(self) -> None:
        self.conn.close()


class Analyzer:
    """ANALYZE the hot tables every few seconds while the load runs, as autovacuum would.

    With autovacuum off (as on this machine's server) the planner never learns that the
    events table grew, and the replay lookup of a batch scans every event of the partner
    (see docs/benchmarks.md); production runs with autovacuum on.
    """

    def __init__(self, dsn: str, every: float):
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True, application_name=OWN_CONNECTIONS)
        self.every = every
        self.stop = threading.Event()
        self.runs = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def analyze(self) -> None:
        self.conn.execute(f"ANALYZE {HOT_TABLES}")
        self.runs += 1

    def _loop(self) -> None:
        while not self.stop.wait(self.every):
            self.analyze()

    def __enter__(self):
        self.analyze()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


def background_busy(seconds: float = 2.0) -> float:
    """Share of the cores busy before the benchmark starts anything (other work on the box)."""
    a = machine_ticks()
    time.sleep(seconds)
    b = machine_ticks()
    return (b[0] - a[0]) / max(b[1] - a[1], 1)


# --- the load -------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it)."""

    def __init__(self, port: int, key: str | None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body, self.headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # an idle keep-alive connection the server closed: one retry on a new one
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


@dataclass
class Phase:
    name: str
    clients: int
    unit: str = "events"
    requests: int = 0
    units: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    cpu: dict = field(default_factory=dict)
    floor_rate: float | None = None

    @property
    def rate(self) -> float:
        return self.units / self.seconds if self.seconds else 0.0

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    def line(self) -> str:
        ratio = f"{self.rate / self.floor_rate:5.2f}×" if self.floor_rate else "     –"
        return (
            f"{self.name:<30} {self.clients:>3} {self.requests:>8,} {self.units:>9,} "
            f"{self.seconds:>6.1f} {self.rate:>9,.0f} {self.request_rate:>8,.0f} "
            f"{self.percentile(0.5):>7.1f} {self.percentile(0.99):>7.1f} {self.errors:>6} "
            f"{ratio:>7}"
        )

    def cpu_line(self) -> str:
        c, n = self.cpu, max(self.units, 1)
        return (
            f"{self.name:<30} {c['app'] / n * 1e6:>9,.0f} {c['pg'] / n * 1e6:>9,.0f} "
            f"{c['gen'] / n * 1e6:>9,.0f} {c['other'] / n * 1e6:>9,.0f}   "
            f"{c['busy'] * 100:>5.0f}%   {c['active']:>6.1f} {c['lock']:>6.1f}"
        )


HEADER = (
    f"{'phase':<30} {'cl':>3} {'requests':>8} {'events':>9} {'s':>6} {'events/s':>9} "
    f"{'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'÷floor':>7}"
)
CPU_HEADER = (
    f"{'CPU µs per event':<30} {'app':>9} {'postgres':>9} {'loadgen':>9} {'other':>9}   "
    f"{'busy':>5}   {'pg active':>6} {'locked':>6}"
)


def run_phase(phase: Phase, port: int, key, path: str, bodies: list[bytes], seconds: float,
              check, meter: CpuMeter | None = None) -> Phase:  # fmt: skip
    """Post ``bodies`` from ``phase.clients`` threads until all are sent or ``seconds`` pass.

    ``check(index, status, data)`` returns (units, ok) for each response.
    """
    next_index = itertools.count().__next__
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        client = Client(port, key)
        mine: list[float] = []
        statuses: Counter = Counter()
        units = errors = 0
        try:
            while time.monotonic() < deadline:
                i = next_index()
                if i >= len(bodies):
                    break
                started = time.perf_counter()
                try:
                    status, data = client.send("POST", path, bodies[i])
                except (OSError, http.client.HTTPException):
                    status, data = 599, b""
                mine.append(time.perf_counter() - started)
                statuses[status] += 1
                try:
                    got, ok = check(i, status, data) if status != 599 else (0, False)
                except (ValueError, KeyError, TypeError):  # not the JSON we expect
                    got, ok = 0, False
                units += got
                errors += not ok
        finally:
            client.close()
        with lock:
            phase.latencies.extend(mine)
            phase.statuses.update(statuses)
            phase.units += units
            phase.errors += errors
            phase.requests += len(mine)

    phase.seconds, cpu = run_threads(worker, phase.clients, meter)
    if meter:
        phase.cpu = cpu
    return phase


def run_threads(worker, clients: int, meter: CpuMeter | None = None) -> tuple[float, dict]:
    """Run ``worker`` in ``clients`` threads started together; (wall seconds, the CPU the
    meter measured meanwhile, or {} without one). Every bench's load phases run this way."""
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    if meter:
        meter.start()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return seconds, meter.stop() if meter else {}


# --- the data -------------------------------------------------------------------------------


def stations(rules_dir: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The organisations of the rules tree as (code, name, kind) rows, and its stations."""
    import yaml

    rows, kinds = [], ["province", "city", "district", "street", "station"]
    for path in sorted(rules_dir.glob("*.yaml")):
        if path.name == "event-types.yaml":
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        code = doc["org"]
        kind = "industry" if code.startswith("ind") else kinds[min(code.count("."), 4)]
        if code.endswith("drivers-home"):
            kind = "drivers_home"
        elif code.endswith("service-centre"):
            kind = "centre"
        rows.append((code, doc["name"], kind))
    leaves = [c for c, _, k in rows if k in ("station", "drivers_home", "centre")]
    return rows, leaves


class Events:
    """Realistic event bodies: duty shifts and volunteer hours that never overlap for a member,
    hazard reports and grid patrols, all within the last four weeks and none in the future."""

    TZ = dt.timezone(dt.timedelta(hours=8))

    def __init__(self, members: list[tuple[str, str]], seed: int = 11):
        self.rng = random.Random(seed)
        self.members = members  # (ref, primary org)
        self.now = dt.datetime.now(self.TZ).replace(microsecond=0)
        self.start = self.now - dt.timedelta(days=WINDOW_DAYS)
        n_slots = (WINDOW_DAYS * 24 - 2 * SLOT_HOURS) // SLOT_HOURS
        self.free = {ref: None for ref, _ in members}
        self.n_slots = n_slots
        self.seq = 0

    def _slot(self, ref: str) -> int | None:
        free = self.free[ref]
        if free is None:
            free = self.free[ref] = list(range(self.n_slots))
            self.rng.shuffle(free)
        return free.pop() if free else None

    def make(self) -> dict:
        rng = self.rng
        self.seq += 1
        ref, home = rng.choice(self.members)
        kind = rng.choices(["shift", "volunteer", "hazard", "patrol"], [4, 2, 2, 2])[0]
        body = {"id": f"ev-{self.seq:08d}", "type": "", "member": ref}
        if kind in ("shift", "volunteer"):
            slot = self._slot(ref)
            if slot is None:  # this member's four weeks are full: report a hazard instead
                kind = "hazard"
        if kind in ("shift", "volunteer"):
            start = self.start + dt.timedelta(hours=slot * SLOT_HOURS, minutes=rng.randint(0, 60))
            hours = rng.choice([0.5, 1, 1.5, 2, 3, 4]) if kind == "shift" else rng.choice([2, 3])
            end = start + dt.timedelta(hours=hours)
            data = {"hours": hours, "start": start.isoformat(), "end": end.isoformat()}
            if kind == "shift":
                body["type"] = "pioneer.shift"
                data["post"] = f"post-{rng.randint(1, 40):02d}"
            else:
                body["type"] = "volunteer.hours"
                data["project"] = f"社区志愿服务项目{rng.randint(1, 30)}"
            when = start
        else:
            when = self.start + dt.timedelta(seconds=rng.randint(0, WINDOW_DAYS * 86400 - 7200))
            if kind == "hazard":
                body["type"] = "governance.hazard_report"
                data = {"severity": rng.choice(["low", "medium", "high"]),
                        "confirmed": rng.random() < 0.5}  # fmt: skip
            else:
                body["type"] = "governance.grid_patrol"
                data = {"minutes": rng.choice([20, 30, 45, 60, 90, 120]),
                        "issues_found": rng.randint(0, 3)}  # fmt: skip
        body["occurred_at"] = when.isoformat()
        if rng.random() < 0.2:
            body["org"] = home  # partners name the place now and then: the member's station
        body["data"] = data
        return body


def encode(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class Tally:
    """What the responses say was stored: to be compared with the database at the end."""

    def __init__(self):
        self.lock = threading.Lock()
        self.created = 0  # events answered 201
        self.entries = 0  # credited awards in those answers (one ledger row each)
        self.points = 0
        self.bonus = 0  # bonus points of badges and levels in those answers (bonus rows)
        self.statuses: Counter = Counter()
        self.first: dict[int, dict] = {}  # single-event phase: index -> first response

    def add(self, results: list[dict]) -> None:
        entries = points = bonus = 0
        statuses: Counter = Counter()
        for body in results:
            credited = [a for a in body["awards"] if not a["pending"] and a["points"] > 0]
            entries += len(credited)
            points += sum(a["points"] for a in credited)
            bonus += body.get("bonus", 0)
            statuses[body["status"]] += 1
        with self.lock:
            self.created += len(results)
            self.entries += entries
            self.points += points
            self.bonus += bonus
            self.statuses.update(statuses)


# --- the run --------------------------------------------------------------------------------


def flask_cli(env: dict, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def setup(args, env: dict, tmp: Path, admin) -> tuple[str, list[tuple[str, str]], list[dict]]:
    """Migrate, import organisations, create the partner; return its key, the members to
    register (ref, station) and their bodies."""
    admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    started = time.perf_counter()
    flask_cli(env, "db", "upgrade")
    rows, leaves = stations(ROOT / "rules")
    csv_path = tmp / "orgs.csv"
    csv_path.write_text(
        "code,name,kind\n" + "".join(f"{c},{n},{k}\n" for c, n, k in rows), encoding="utf-8"
    )
    flask_cli(env, "orgs", "import", str(csv_path))
    key = flask_cli(env, "partners", "create", "美团外卖", "--code", "meituan").splitlines()[-1]
    print(
        f"setup: database {DB_NAME} migrated, {len(rows)} organisations imported, partner "
        f"created in {time.perf_counter() - started:.1f} s; members at {len(leaves)} stations"
    )
    rng = random.Random(5)
    members, bodies = [], []
    for i in range(args.members):
        station = leaves[i % len(leaves)]
        ref = f"rider-{i:06d}"
        members.append((ref, station))
        bodies.append(
            {
                "name": f"骑手{i:05d}",
                "phone": f"139{i:08d}",
                "primary_org": station,
                "party_member": rng.random() < 0.4,
                "industry": rng.choice(INDUSTRIES),
                "tags": rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2])),
            }
        )
    return key, members, bodies


def floor_phase(args, env: dict, tmp: Path, monitor, bodies: list[bytes]) -> Phase:
    monitor.execute(
        f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, ref text NOT NULL, "
        "member text NOT NULL, type text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    floor_env = {**env, "BENCH_FLOOR_DSN": env["DATABASE_URL"]}
    server = Gunicorn("bench_ingest:floor_app()", args.port + 1, args, floor_env,
                      tmp / "floor.log", pythonpath=Path(__file__).parent)  # fmt: skip
    meter = None
    try:
        server.wait_ready()
        meter = CpuMeter(server, env["DATABASE_URL"])
        ok = lambda i, status, data: (1, status == 201)  # noqa: E731
        run_phase(Phase("warm-up", args.clients), server.port, None, "/floor", bodies[:200],
                  10, ok)  # fmt: skip
        phase = Phase("floor: Flask + 1 INSERT", args.clients, "requests")
        return run_phase(phase, server.port, None, "/floor", bodies[200:], args.seconds, ok,
                         meter)  # fmt: skip
    finally:
        if meter:
            meter.close()
        server.stop()


def register(port: int, key: str, members, bodies, clients: int) -> Phase:
    encoded = [encode(b) for b in bodies]
    phase = Phase("members API (PUT)", clients, "members")
    next_index = itertools.count().__next__
    lock = threading.Lock()

    def worker():
        client = Client(port, key)
        while (i := next_index()) < len(encoded):
            started = time.perf_counter()
            status, _ = client.send("PUT", f"/api/v1/members/{members[i][0]}", encoded[i])
            with lock:
                phase.latencies.append(time.perf_counter() - started)
                phase.requests += 1
                phase.units += status == 201
                phase.errors += status != 201
        client.close()

    phase.seconds, _ = run_threads(worker, clients)
    return phase


def api_phases(args, key, single: list[dict], batches: list[list[dict]], server, tally: Tally,
               meter: CpuMeter) -> list[Phase]:  # fmt: skip
    port = server.port
    phases = []

    # warm-up: dry runs load the rules and fill the connection pools of every worker
    dry = [encode(b) for b in single[:100]]
    run_phase(Phase("warm-up", args.clients), port, key, "/api/v1/events?dry_run=true", dry,
              10, lambda i, s, d: (1, s == 200))  # fmt: skip

    def check_single(i, status, data):
        if status != 201:
            return 0, False
        body = json.loads(data)
        tally.add([body])
        tally.first[i] = body
        return 1, True

    encoded = [encode(b) for b in single]
    phase = Phase("single-event API", args.clients)
    phases.append(run_phase(phase, port, key, "/api/v1/events", encoded, args.seconds,
                            check_single, meter))  # fmt: skip

    def check_batch(i, status, data):
        if status != 200:
            return 0, False
        body = json.loads(data)
        new = [r["result"] for r in body["results"] if r["status"] == 201]
        tally.add(new)
        return len(new), body["rejected"] == 0 and len(new) == len(body["results"])

    encoded = [encode({"events": b}) for b in batches]
    phase = Phase(f"batch API ({args.batch_size}/batch)", args.batch_clients)
    phases.append(run_phase(phase, port, key, "/api/v1/events/batch", encoded,
                            args.batch_seconds, check_batch, meter))  # fmt: skip

    # replays: the same bodies again answer 200 with the first response and store nothing
    sent = sorted(tally.first)[: args.replays]
    replay_bodies = [encode(single[i]) for i in sent]

    def check_replay(i, status, data):
        return 1, status == 200 and json.loads(data) == tally.first[sent[i]]

    phase = Phase("replay (single-event API)", args.clients)
    phases.append(run_phase(phase, port, key, "/api/v1/events", replay_bodies, args.seconds,
                            check_replay, meter))  # fmt: skip

    def check_batch_replay(i, status, data):
        if status != 200:
            return 0, False
        results = json.loads(data)["results"]
        return len(results), all(r["status"] == 200 for r in results)

    n = max(1, min(len(batches), args.replays // args.batch_size))
    phase = Phase(f"replay (batch API, {args.batch_size}/batch)", args.batch_clients)
    phases.append(run_phase(phase, port, key, "/api/v1/events/batch", encoded[:n],
                            args.seconds, check_batch_replay, meter))  # fmt: skip
    return phases


def verify(monitor, tally: Tally, sample: int = 100) -> list[tuple[str, bool]]:
    """Compare the database with what the responses said; return (line, ok) pairs."""
    q = lambda sql: monitor.execute(sql).fetchone()  # noqa: E731
    (events,) = q("SELECT count(*) FROM events")
    ledger_rows, ledger_points = q("SELECT count(*), coalesce(sum(points), 0) FROM ledger_entries")
    award_rows, award_points = q(
        "SELECT count(*), coalesce(sum(points), 0) FROM ledger_entries WHERE kind = 'award'"
    )
    (balances,) = q("SELECT coalesce(sum(balance), 0) FROM members")
    statuses = dict(monitor.execute("SELECT status, count(*) FROM events GROUP BY status"))
    (dupes,) = q(
        "SELECT count(*) FROM (SELECT partner_id, partner_event_id FROM events "
        "GROUP BY 1, 2 HAVING count(*) > 1) d"
    )
    bad = monitor.execute(
        "SELECT m.id, m.balance, coalesce(sum(l.points), 0), m.ledger_seq, count(l.id), "
        "coalesce(max(l.seq), 0) FROM (SELECT * FROM members ORDER BY random() LIMIT %s) m "
        "LEFT JOIN ledger_entries l ON l.member_id = m.id "
        "GROUP BY m.id, m.balance, m.ledger_seq "
        "HAVING m.balance <> coalesce(sum(l.points), 0) OR m.ledger_seq <> count(l.id) "
        "OR count(l.id) <> coalesce(max(l.seq), 0)",
        (sample,),
    ).fetchall()
    by_status = ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))
    return [
        (f"events stored {events:,} == events answered 201 {tally.created:,} "
         f"(same id twice: {dupes}); by status: {by_status}",
         events == tally.created and dupes == 0),
        (f"award rows {award_rows:,} == credited awards in the responses {tally.entries:,}; "
         f"points {award_points:,} == {tally.points:,}",
         award_rows == tally.entries and award_points == tally.points),
        (f"ledger points {ledger_points:,} == awards {tally.points:,} + badge and level "
         f"bonuses {tally.bonus:,} in the responses ({ledger_rows - award_rows:,} bonus rows)",
         ledger_points == tally.points + tally.bonus),
        (f"sum of balances {balances:,} == sum of ledger points {ledger_points:,}",
         balances == ledger_points),
        (f"{sample} random members: balance == sum of their entries, seq 1..n: "
         f"{'all' if not bad else f'{len(bad)} differ: {bad[:3]}'}", not bad),
        (f"overlapping duties reported: {statuses.get('duplicate', 0)} (expected 0: spans are "
         "disjoint per member)", statuses.get("duplicate", 0) == 0),
    ]  # fmt: skip


def profile(args, env: dict, key: str, maker: Events) -> None:
    """Post batches and single events in this process (Flask test client, one client): time
    them, count their SQL statements, then profile them with cProfile and print where the
    time goes. cProfile slows Python code down about twofold: read the shares."""
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "RULES_DIR")})
    import psycopg

    from app import create_app

    # no group commit: the work stays in this thread, where cProfile sees it
    app = create_app({"INGEST_GROUP_MAX": 0})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    statements: Counter = Counter()
    execute = psycopg.Cursor.execute

    def count(cursor, query, params=None, **kwargs):  # SQLAlchemy's and ingest's own statements
        text = query if isinstance(query, str) else str(query)
        words = text.split(None, 3)
        kind = " ".join(words[:3] if words and words[0] in ("INSERT", "DELETE") else words[:2])
        statements[kind] += 1
        return execute(cursor, query, params, **kwargs)

    psycopg.Cursor.execute = count

    def post(path: str, docs: list) -> None:
        for doc in docs:
            assert client.post(path, json=doc, headers=headers).status_code in (200, 201)

    size = args.batch_size
    batch_docs = [{"events": [maker.make() for _ in range(size)]} for _ in range(9)]
    single_docs = [maker.make() for _ in range(700)]
    post("/api/v1/events/batch", batch_docs[:1])  # warm-up: rules loaded, pool filled
    post("/api/v1/events", single_docs[:100])
    for label, path, timed, profiled, n_events in (
        ("batch API", "/api/v1/events/batch", batch_docs[1:5], batch_docs[5:], 4 * size),
        ("single-event API", "/api/v1/events", single_docs[100:400], single_docs[400:], 300),
    ):  # fmt: skip
        statements.clear()
        cpu, started = time.process_time(), time.perf_counter()
        post(path, timed)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        per_request = ", ".join(
            f"{kind} {n / len(timed):,.1f}" for kind, n in statements.most_common(6)
        )
        print(
            f"\nin-process {label} (Flask test client, one client, no profiler): "
            f"{n_events / wall:,.0f} events/s; per event {wall / n_events * 1e6:,.0f} µs wall, "
            f"{cpu / n_events * 1e6:,.0f} µs CPU of this process"
        )
        print(
            f"  SQL statements per request: {sum(statements.values()) / len(timed):,.1f} "
            f"({per_request})"
        )
        prof = cProfile.Profile()
        prof.enable()
        post(path, profiled)
        prof.disable()
        stats = pstats.Stats(prof)
        print("  under cProfile, cumulative time of the steps of ingest, share of the whole:")
        shares(stats)
        print("  most time inside one function (tottime):")
        top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:10]
        total = sum(v[2] for v in stats.stats.values())
        for (path_, line, name), (_, calls, tottime, _, _) in top:
            where = path_.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            print(f"    {tottime / total * 100:5.1f}%  {calls:>8,} calls  {name} ({where}:{line})")


PARTS = [
    ("parse + validate (marshmallow EventIn, data)", "services/ingest/parse.py", "parse_item"),
    ("read: one statement (store_pg.READ)", "services/ingest/store_pg.py", "load"),
    ("evaluate rules", "engine/evaluate.py", "evaluate"),
    ("write: one statement (store_pg.WRITE)", "services/ingest/store_pg.py", "save"),
    ("  of which hash chain", "services/ledger.py", "chain"),
    ("commit", "services/ingest/store_pg.py", "transaction"),
    ("read emergencies (cached)", "services/ingest/__init__.py", "_emergencies"),
    ("authenticate partner", "api/auth.py", "require_partner"),
    ("psycopg: waiting for PostgreSQL", "psycopg/connection.py", "wait"),
    ("json.dumps (JSON parameters, hashes)", "json/__init__.py", "dumps"),
]


def shares(stats: pstats.Stats) -> None:
    """Cumulative time of the main steps of an ingest request, as a share of the whole."""
    table = stats.stats  # (file, line, function) -> (cc, nc, tottime, cumtime, callers)
    total = sum(v[2] for v in table.values())
    for label, suffix, name in PARTS:
        cum = max(
            (v[3] for (path, _, fn), v in table.items() if fn == name and path.endswith(suffix)),
            default=0.0,
        )
        print(f"    {label:<46} {cum / total * 100:5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8, help="floor and single-event clients")
    parser.add_argument("--single", type=int, default=5000, help="single events at most")
    parser.add_argument("--seconds", type=float, default=20, help="time limit of a phase")
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-events", type=int, default=100_000)
    parser.add_argument("--batch-seconds", type=float, default=180)
    parser.add_argument("--replays", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    # gthread: requests in one worker overlap, so single events share transactions (group
    # commit, INGEST_GROUP_MAX); the production setting in the README
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="gthread")
    parser.add_argument("--threads", type=int, default=4, help="per gthread worker")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--analyze-every", type=float, default=10,
        help="seconds between ANALYZEs when the server's autovacuum is off (0: never)",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="then profile in-process")
    args = parser.parse_args()
    if args.quick:
        args.members, args.single, args.seconds = 300, 1500, 4
        args.batch_events, args.batch_seconds, args.replays = 10_000, 15, 500

    import psycopg

    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; gunicorn -w {args.workers} "
        f"-k {args.worker_class}"
        + (f" --threads {args.threads}" if args.worker_class == "gthread" else "")
        + f"; PostgreSQL database {DB_NAME}; {args.redis}"
    )
    print(
        "the load generator (this process, one thread + keep-alive connection per client) "
        "shares the cores with gunicorn and PostgreSQL"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"{args.postgres}/{DB_NAME}",
        "REDIS_URL": args.redis,
        "RULES_DIR": str(ROOT / "rules"),
        "SECRET_KEY": "bench-ingest",
    }
    busy = background_busy()
    print(
        f"machine busy before the run: {busy * 100:.0f}% of the cores"
        + (" (other work is running: expect lower figures)" if busy > 0.1 else "")
    )
    admin = psycopg.connect(f"{args.postgres}/postgres", autocommit=True)
    server = monitor = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp_name:
            tmp = Path(tmp_name)
            key, members, member_bodies = setup(args, env, tmp, admin)
            monitor = psycopg.connect(
                env["DATABASE_URL"], autocommit=True, application_name=OWN_CONNECTIONS
            )

            maker = Events(members)
            single = [maker.make() for _ in range(args.single)]
            n_batches = max(1, args.batch_events // args.batch_size)
            batches = [[maker.make() for _ in range(args.batch_size)] for _ in range(n_batches)]

            floor = floor_phase(args, env, tmp, monitor, [encode(b) for b in single])
            server = Gunicorn("app:create_app()", args.port, args, env, tmp / "app.log")
            server.wait_ready()
            members_phase = register(server.port, key, members, member_bodies, args.clients)
            tally = Tally()
            autovacuum = monitor.execute("SHOW autovacuum").fetchone()[0]
            if autovacuum == "on" or not args.analyze_every:
                analyzer = contextlib.nullcontext()
            else:
                print(
                    f"autovacuum is {autovacuum} on this server: this script runs ANALYZE "
                    f"({HOT_TABLES}) every {args.analyze_every:g} s while the load runs"
                )
                analyzer = Analyzer(env["DATABASE_URL"], args.analyze_every)
            with analyzer:
                meter = CpuMeter(server, env["DATABASE_URL"])
                try:
                    phases = api_phases(args, key, single, batches, server, tally, meter)
                finally:
                    meter.close()
            server.stop()
            log = server.tail()
            server = None
            for p in phases:
                p.floor_rate = floor.rate

            print()
            print(HEADER)
            for p in [floor, members_phase, *phases]:
                print(p.line())
            print()
            print(CPU_HEADER)
            for p in [floor, *phases]:
                print(p.cpu_line())
            print(
                "(app: gunicorn workers; postgres: backends serving the benchmark database; "
                "loadgen: this process; other: the rest of the machine, e.g. WAL writer; "
                "busy: share of both cores; pg active / locked: backends running a statement / "
                "of them waiting for a row lock, mean of 50 ms samples)"
            )
            print()
            single_p, batch_p = phases[0], phases[1]
            targets = [
                (f"batch API {batch_p.rate:,.0f} events/s (target ≥ 3,000)",
                 batch_p.rate >= 3000),
                (f"single-event API {single_p.request_rate:,.0f} requests/s (target ≥ 400), "
                 f"p99 {single_p.percentile(0.99):.1f} ms (target < 50)",
                 single_p.request_rate >= 400 and single_p.percentile(0.99) < 50),
            ]  # fmt: skip
            errors = sum(p.errors for p in [floor, members_phase, *phases])
            checks = verify(monitor, tally)
            checks.append((f"errors in all phases: {errors}", errors == 0))
            for line, ok in targets:
                print(f"target  {'met    ' if ok else 'NOT MET'} {line}")
            for line, ok in checks:
                print(f"check   {'ok     ' if ok else 'FAILED '} {line}")
            unexpected = {s: n for p in phases for s, n in p.statuses.items()
                          if s not in (200, 201)}  # fmt: skip
            if unexpected or errors:
                print(f"unexpected statuses: {unexpected}; gunicorn log tail:\n{log}")
            if args.profile:
                profile(args, env, key, maker)
            if not all(ok for _, ok in checks):
                sys.exit(1)
    finally:
        if server is not None:
            server.stop()
        if monitor is not None:
            monitor.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
