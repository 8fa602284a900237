"""Benchmark the production topology under a mixed load: scripts/serve, PostgreSQL and Redis here.

    .venv/bin/python scripts/bench/bench_load.py [--quick] [--seconds 60] [--analyze]

1. Setup: ensures Debian's ``wrk`` (scripts/lib/wrk.sh), drops and recreates its own PostgreSQL
   database ``pp_bench_load`` (dropped at the end, also on error) and flushes Redis database 8
   (also at the end). Starts ``scripts/serve`` (gunicorn with scripts/gunicorn.conf.py, an RQ
   worker per queue and the scheduler under honcho; it migrates and checks rules/ itself) as a
   subprocess in its own session, with RATE_LIMIT_LOGIN raised (see below), and waits for
   ``/readyz``. Then, through the real commands and API: ``flask orgs import`` of the
   organisations the shipped rules/ files name, three partners (``flask partners create``),
   members registered with ``PUT /api/v1/members/<ref>`` (spread over the stations of the
   rules tree), a history of events over the last two weeks through the batch API (so boards
   have content), and rider sessions: ``POST /api/v1/members/<ref>/login-link``, then a GET of
   the returned ``/m/login/<token>`` keeps the ``pp_session`` cookie. With ``--analyze``,
   ANALYZE of the database then, as autovacuum would have done (it is off on this machine).
2. The floor, in the same run (after the warm-ups of 3.): wrk against ``GET /healthz`` of
   the same server (the same gunicorn, no database, no Redis) with as many connections as the
   mixed load.
3. The load: one wrk process per kind of request, at the same time, so that each kind gets its
   own latency histogram (wrk's ``--latency``): ingestion (single events, ``POST
   /api/v1/events``, from the three partners, their members at random, shifts in disjoint time
   slots per member, hazard reports and grid patrols, every id unique, all within the last
   36 hours), rider pages (``GET /m/`` and ``/m/boards`` with a session cookie of the pool) and
   leaderboard reads (``GET /api/v1/leaderboards/<scope>?period=week``, partner key). The Lua
   scripts are generated into a temporary directory; each counts the statuses of its answers
   (any status but 2xx is an error; a 201 or a 200 is a success, whatever the event's status).
   Three warm-ups of 5 s (3 s with ``--quick``; not counted) calibrate the readers: a reader
   connection waits between its requests (wrk's ``delay``, whole ms) so that reads are about
   20% of the requests, as riders open pages at their own pace, not as fast as the server
   answers; the first warm-up is unpaced, each next one paced by what the one before measured.
   ``--quick``: 10 s of load after a smaller setup (600 members, 3,000 events, 60 sessions).
4. Prints requests/s (all and per kind), p50/p99 per kind, errors per kind with the statuses
   seen, the achieved mix, the CPU seconds of each part of the topology (gunicorn, RQ workers,
   scheduler, honcho and its shells, PostgreSQL backends and its own processes, Redis, wrk,
   this script and the rest of the machine) read from /proc before and after, how many
   PostgreSQL backends ran a statement and what they waited for (pg_stat_activity every
   100 ms), Redis's time per command (INFO commandstats), the memory (RSS and PSS) of
   every process of the topology and of Redis and PostgreSQL, the ratios to the floor and
   whether the target is met.
5. Verifies what was stored: events from the load == answers 201 (plus at most the requests
   wrk left unanswered when it stopped: the server may still have stored those), no event id
   twice, every balance == the sum of its ledger entries with seq 1..n (SQL, every member),
   and ``flask ledger verify`` (hash chains).

Everything is bounded in time and talks only to 127.0.0.1. The rate limits of the service stay
on: RATE_LIMIT_PARTNER keeps its value (default ``1000/second`` per partner, which
the three partners stay well under: 429s would show as errors) and RATE_LIMIT_LOGIN is set to
``100000/minute`` for the sign-ins of the setup, which all come from 127.0.0.1.
Target (issue #8): ≥ 1,000 requests/s mixed with p99 < 100 ms and no errors, on this 2-core
machine, where wrk, PostgreSQL and Redis share the cores with the service.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import itertools
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import (
    CLK_TCK,
    INDUSTRIES,
    TAGS,
    Client,
    background_busy,
    cpu_seconds,
    encode,
    flask_cli,
    machine_ticks,
    run_threads,
    stations,
)

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "pp_bench_load"
OWN_CONNECTIONS = "bench_load"  # application_name of this script's monitoring connection
COOKIE = "pp_session"
PARTNERS = [("美团外卖", "meituan", "mt"), ("饿了么", "eleme", "elm"), ("达达快送", "dada", "dd")]
LOGIN_LIMIT = "100000/minute"
PARTNER_LIMIT_DEFAULT = "1000/second"
SLOT_SECONDS = 5400  # a member's shifts in the load sit in distinct 90-minute slots
SLOTS = 24  # 36 hours of slots, ending an hour ago
WARMUPS = 3  # warm-ups before the measured run: the first unpaced, then paced readers
WARMUP_SLOTS = 6  # slots 0-5 for the warm-ups (two each), the rest for the measured run
READ_SHARE = 0.2  # reads: a fifth of the requests, half rider pages, half leaderboards
TARGET_RPS, TARGET_P99_MS = 1000, 100
TZ = dt.timezone(dt.timedelta(hours=8))


# --- the topology ---------------------------------------------------------------------------


def proc_table() -> dict[int, tuple[int, str, float]]:
    """Every process now: pid -> (ppid, command line, CPU seconds)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            pid = int(stat.parent.name)
            fields_ = stat.read_text().rsplit(")", 1)[1].split()
            raw = (stat.parent / "cmdline").read_bytes()
            cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            cpu = (int(fields_[11]) + int(fields_[12])) / CLK_TCK
            out[pid] = (int(fields_[1]), cmd, cpu)
    return out


def descendants(root: int, table: dict) -> list[int]:
    kids = defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        kids[ppid].append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return [p for p in out if p in table]


def is_shell(cmd: str) -> bool:
    """honcho itself, its forks, the shells it starts commands with, scripts/lib/respawn."""
    return "honcho" in cmd or "respawn" in cmd or cmd.startswith(("bash", "/bin/sh", "sh "))


def part_of(cmd: str, parent_cmd: str) -> str:
    """Which part of the topology a process of scripts/serve's tree is."""
    if is_shell(cmd):
        return "honcho, shells, respawn"
    if "gunicorn" in cmd:
        master = "gunicorn" not in parent_cmd or is_shell(parent_cmd)
        return "gunicorn master" if master else "gunicorn workers"
    for queue in ("default", "boards"):
        if f"worker {queue}" in cmd:
            # a worker started with_scheduler forks RQ's scheduler (enqueue_at, retries)
            fork = f"worker {queue}" in parent_cmd and not is_shell(parent_cmd)
            return "RQ workers' scheduler forks" if fork else f"RQ worker {queue}"
    if "scheduler" in cmd:
        return "scheduler"
    return "other of scripts/serve"


class Topology:
    """scripts/serve started in its own session; stopped with SIGTERM to its process group
    (honcho passes it on to the process group of each of its processes), then SIGKILL."""

    def __init__(self, env: dict, port: int, log: Path):
        self.port = port
        self.log = log
        self.out = log.open("wb")
        self.proc = subprocess.Popen(
            [str(ROOT / "scripts" / "serve")], cwd=ROOT, env=env, stdout=self.out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.seen: dict[int, str] = {}  # every process of the tree seen: pid -> command line

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def wait_ready(self, seconds: float) -> float:
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"scripts/serve exited with {self.proc.returncode}:\n{self.tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = self.get("/readyz")
                if status == 200 and len(self.processes()) >= 6:
                    return time.monotonic() - started
            time.sleep(0.2)
        raise SystemExit(f"/readyz did not answer 200 within {seconds:g} s:\n{self.tail()}")

    def processes(self, table: dict | None = None) -> dict[int, tuple[str, str]]:
        """pid -> (part, command line) of every process of the tree now."""
        table = table if table is not None else proc_table()
        pids = descendants(self.proc.pid, table)
        out = {}
        for pid in pids:
            ppid, cmd, _ = table[pid]
            out[pid] = (part_of(cmd, table.get(ppid, (0, "", 0))[1]), cmd)
            self.seen[pid] = cmd
        return out

    def tail(self, lines: int = 30) -> str:
        self.out.flush()
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(line for line in text if "pioneer.access" not in line)[
            -4000:
        ] or "\n".join(text[-lines:])

    def stop(self, seconds: float = 40) -> None:
        self.processes()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # whatever of the tree outlived honcho (it kills each process group after 5 s)
        table = proc_table()
        for pid, cmd in self.seen.items():
            if pid in table and table[pid][1] == cmd:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.out.close()


def postgres_processes(table: dict, own: set[int] = frozenset()) -> dict[int, str]:
    """pid -> part of the PostgreSQL server's processes: backends of the benchmark database
    (``own``: this script's monitoring connections), the server's own processes (postmaster,
    WAL writer, checkpointer...) or other backends."""
    out = {}
    for pid, (_, cmd, _) in table.items():
        if not cmd.startswith("postgres") and "/bin/postgres" not in cmd:
            continue
        if f" {DB_NAME} " in cmd:
            out[pid] = "monitor" if pid in own else "PostgreSQL backends (this db)"
        elif "(" in cmd or "[local]" in cmd:
            out[pid] = "other PostgreSQL backends"
        else:
            out[pid] = "PostgreSQL server processes"
    return out


def own_backends(monitor) -> set[int]:
    """The backends of this script's monitoring connections (application_name)."""
    rows = monitor.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (OWN_CONNECTIONS,)
    )
    return {pid for (pid,) in rows}


def redis_pid(redis) -> int:
    return int(redis.info("server")["process_id"])


class CpuMeter:
    """CPU seconds of each part between ``start`` and ``stop``, from /proc: the processes of
    scripts/serve's tree, PostgreSQL's, Redis, wrk (this script's children, waited for),
    this script and the whole machine; the rest of the machine is what remains."""

    def __init__(self, topology: Topology, redis_pid_: int, monitor):
        self.topology = topology
        self.redis_pid = redis_pid_
        self.monitor = monitor
        self.before: dict = {}

    def snapshot(self) -> dict:
        table = proc_table()
        parts: dict[str, dict[int, float]] = defaultdict(dict)
        for pid, (part, _) in self.topology.processes(table).items():
            parts[part][pid] = table[pid][2]
        for pid, part in postgres_processes(table, own_backends(self.monitor)).items():
            parts[part][pid] = table[pid][2]
        parts["Redis (the whole server)"][self.redis_pid] = cpu_seconds(self.redis_pid)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "parts": parts,
            "wrk": children.ru_utime + children.ru_stime,
            "self": own.ru_utime + own.ru_stime,
            "machine": machine_ticks(),
        }

    def start(self) -> None:
        self.before = self.snapshot()

    def stop(self) -> tuple[dict[str, float], float, float]:
        """(CPU seconds per part, busy share of the cores, wall seconds of the cores)."""
        a, b = self.before, self.snapshot()
        out = {}
        for part, pids in b["parts"].items():
            out[part] = sum(v - a["parts"].get(part, {}).get(pid, 0.0) for pid, v in pids.items())
        out["wrk (load generator)"] = b["wrk"] - a["wrk"]
        out["this script"] = b["self"] - a["self"]
        busy = (b["machine"][0] - a["machine"][0]) / CLK_TCK
        total = (b["machine"][1] - a["machine"][1]) / CLK_TCK
        out.pop("monitor", None)
        out["rest of the machine"] = max(busy - sum(out.values()), 0.0)
        return out, busy / total if total else 0.0, total


class PgSampler:
    """Every 100 ms while the load runs: how many backends of the benchmark database run a
    statement, and what those are waiting for (a row lock, WAL, I/O...)."""

    def __init__(self, dsn: str):
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True, application_name=OWN_CONNECTIONS)
        self.samples = 0
        self.waits: Counter = Counter()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.done.wait(0.1):
            rows = self.conn.execute(
                "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') "
                "FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                "AND application_name <> %s",
                (DB_NAME, OWN_CONNECTIONS),
            ).fetchall()
            self.samples += 1
            self.waits.update(w for (w,) in rows)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self.conn.close()

    def line(self) -> str:
        n = max(self.samples, 1)
        active = sum(self.waits.values()) / n
        top = ", ".join(f"{w} {c / n:.2f}" for w, c in self.waits.most_common(5))
        return (
            f"PostgreSQL backends running a statement (mean of {self.samples} samples, 100 ms "
            f"apart): {active:.2f}; by what they wait for: {top}"
        )


def redis_commands(redis) -> dict[str, tuple[int, int]]:
    """command -> (calls, µs) since Redis started (the whole server)."""
    return {
        k.removeprefix("cmdstat_"): (v["calls"], v["usec"])
        for k, v in redis.info("commandstats").items()
    }


def memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process in MiB; PSS shares shared pages among the processes using them
    (PostgreSQL's shared buffers, the code pages gunicorn's workers share with the master)."""
    rss = pss = 0.0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    return rss, pss


# --- the data -------------------------------------------------------------------------------


@dataclass
class Partner:
    name: str
    code: str
    prefix: str  # of its members' references
    key: str = ""
    members: int = 0

    def ref(self, i: int) -> str:
        return f"{self.prefix}-{i:05d}"


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, TZ).replace(microsecond=0).isoformat()


def member_bodies(partner_no: int, n: int, leaves: list[str], rng: random.Random) -> list[dict]:
    return [
        {
            "name": f"骑手{partner_no}{i:05d}",
            "phone": f"13{partner_no}{i:08d}",  # no phone twice: every ref its own member
            "primary_org": leaves[(i * 7 + partner_no) % len(leaves)],
            "party_member": rng.random() < 0.4,
            "industry": rng.choice(INDUSTRIES),
            "tags": rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2])),
        }
        for i in range(n)
    ]


def history(partner: Partner, per_member: int, now: float, rng: random.Random) -> list[dict]:
    """Events of the last 14 days: shifts and volunteer hours on distinct days 2-14 ago (never
    overlapping the load's shifts, which are all within the last 37 hours), hazard reports and
    grid patrols at any time."""
    out = []
    for i in range(partner.members):
        days = rng.sample(range(2, 15), min(per_member, 13))
        for j in range(per_member):
            kind = rng.choices(["shift", "volunteer", "hazard", "patrol"], [4, 2, 2, 2])[0]
            body = {"id": f"h-{partner.prefix}-{i}-{j}", "member": partner.ref(i)}
            if kind in ("shift", "volunteer") and days:
                day = days.pop()
                start = now - day * 86400 + rng.randint(0, 3600)
                hours = rng.choice([1, 2, 3]) if kind == "shift" else 2
                data = {"hours": hours, "start": iso(start), "end": iso(start + hours * 3600)}
                if kind == "shift":
                    body["type"] = "pioneer.shift"
                    data["post"] = f"post-{rng.randint(1, 40):02d}"
                else:
                    body["type"] = "volunteer.hours"
                    data["project"] = f"社区志愿服务项目{rng.randint(1, 30)}"
                when = start
            elif kind == "patrol":
                body["type"] = "governance.grid_patrol"
                data = {"minutes": rng.choice([30, 60, 90]), "issues_found": rng.randint(0, 3)}
                when = now - rng.randint(600, 14 * 86400)
            else:
                body["type"] = "governance.hazard_report"
                data = {"severity": rng.choice(["low", "medium", "high"]),
                        "confirmed": rng.random() < 0.5}  # fmt: skip
                when = now - rng.randint(600, 14 * 86400)
            body["occurred_at"] = iso(when)
            body["data"] = data
            out.append(body)
    rng.shuffle(out)
    return out


def parallel(port: int, key: str | None, jobs: list[tuple[str, str, bytes]], clients: int,
             ok) -> tuple[float, Counter, list]:  # fmt: skip
    """Send ``jobs`` (method, path, body) from ``clients`` keep-alive connections; return the
    wall seconds, the statuses and the answers ``ok(status, data)`` refused."""
    next_index = itertools.count().__next__
    statuses: Counter = Counter()
    bad: list = []
    lock = threading.Lock()

    def worker() -> None:
        client = Client(port, key)
        try:
            while (i := next_index()) < len(jobs):
                method, path, body = jobs[i]
                status, data = client.send(method, path, body)
                good = ok(status, data)
                with lock:
                    statuses[status] += 1
                    if not good:
                        bad.append((path, status, data[:300]))
        finally:
            client.close()

    seconds, _ = run_threads(worker, clients)
    return seconds, statuses, bad


def setup(args, env: dict, tmp: Path, topology: Topology) -> tuple[list[Partner], list[str], int]:
    """Organisations, partners, members, history, sessions; return the partners, the session
    cookies and the events the history stored."""
    rows, leaves = stations(ROOT / "rules")
    csv_path = tmp / "orgs.csv"
    csv_path.write_text(
        "code,name,kind\n" + "".join(f"{c},{n},{k}\n" for c, n, k in rows), encoding="utf-8"
    )
    started = time.perf_counter()
    flask_cli(env, "orgs", "import", str(csv_path))
    partners = [Partner(name, code, prefix) for name, code, prefix in PARTNERS]
    for p in partners:
        p.key = flask_cli(env, "partners", "create", p.name, "--code", p.code).splitlines()[-1]
        p.members = args.members
    print(
        f"setup: {len(rows)} organisations imported (flask orgs import), {len(partners)} "
        f"partners created (flask partners create) in {time.perf_counter() - started:.1f} s"
    )
    rng = random.Random(8)
    port = topology.port
    created = lambda status, data: status == 201  # noqa: E731
    total = Counter()
    seconds = 0.0
    for n, p in enumerate(partners):
        bodies = member_bodies(n + 1, p.members, leaves, rng)
        jobs = [("PUT", f"/api/v1/members/{p.ref(i)}", encode(b)) for i, b in enumerate(bodies)]
        s, statuses, bad = parallel(port, p.key, jobs, args.setup_clients, created)
        seconds += s
        total += statuses
        if bad:
            raise SystemExit(f"member registration failed: {bad[:3]}")
    n_members = sum(p.members for p in partners)
    print(
        f"setup: {n_members:,} members registered (PUT /api/v1/members/<ref>, "
        f"{args.setup_clients} clients) at {len(leaves)} stations in {seconds:.1f} s "
        f"({n_members / seconds:,.0f}/s)"
    )

    now = time.time()
    stored = 0
    seconds = 0.0
    per_member = max(1, args.history // n_members)

    def batch_ok(status, data):
        nonlocal stored
        if status != 200:
            return False
        results = json.loads(data)["results"]
        with lock:
            stored += sum(r["status"] == 201 for r in results)
        return all(r["status"] == 201 for r in results)

    lock = threading.Lock()
    for p in partners:
        events = history(p, per_member, now, rng)
        jobs = [
            ("POST", "/api/v1/events/batch", encode({"events": events[i : i + 500]}))
            for i in range(0, len(events), 500)
        ]
        s, _, bad = parallel(port, p.key, jobs, 4, batch_ok)
        seconds += s
        if bad:
            raise SystemExit(f"history batches failed: {bad[:2]}")
    print(
        f"setup: history of {stored:,} events over the last 14 days (batch API, 500 per batch, "
        f"4 clients) in {seconds:.1f} s ({stored / seconds:,.0f} events/s)"
    )

    cookies = sign_in(port, partners, args.sessions, rng)
    return partners, cookies, stored


def sign_in(port: int, partners: list[Partner], n: int, rng: random.Random) -> list[str]:
    """``n`` rider sessions: a login link through the API, opened; the cookie kept."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    cookies = []
    try:
        for k in range(n):
            p = partners[k % len(partners)]
            ref = p.ref(rng.randrange(p.members))
            conn.request(
                "POST", f"/api/v1/members/{ref}/login-link",
                headers={"Authorization": f"Bearer {p.key}", "Content-Length": "0"},
            )  # fmt: skip
            response = conn.getresponse()
            body = response.read()
            if response.status != 201:
                raise SystemExit(f"login-link: {response.status} {body[:300]!r}")
            conn.request("GET", urlsplit(json.loads(body)["url"]).path)
            response = conn.getresponse()
            response.read()
            if response.status != 302:
                raise SystemExit(f"opening the login link: {response.status}")
            jar = SimpleCookie()
            for value in response.headers.get_all("Set-Cookie") or []:
                jar.load(value)
            cookies.append(jar[COOKIE].value)
    finally:
        conn.close()
    print(
        f"setup: {len(cookies)} rider sessions (POST login-link + GET /m/login/<token>, "
        f"RATE_LIMIT_LOGIN={LOGIN_LIMIT} for this) in {time.perf_counter() - started:.1f} s"
    )
    return cookies


# --- wrk ------------------------------------------------------------------------------------

LUA_COMMON = r"""
-- generated by scripts/bench/bench_load.py: counts the statuses of the answers per thread
-- (globals, so that done() can read them with thread:get) and prints them in done()
statuses = {}
bodies = {}
started = 0
local threads = {}
local n_threads = 0
pause = 0

function setup(thread)
  n_threads = n_threads + 1
  thread:set("tid", n_threads)
  table.insert(threads, thread)
end

local function common_init(args)
  pause = tonumber(args[1]) or 0
  math.randomseed(tid * 7919 + os.time())
end

local function tally(status, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local all, kinds, sent = {}, {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + v end
    for k, v in pairs(t:get("bodies")) do kinds[k] = (kinds[k] or 0) + v end
    sent = sent + t:get("started")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d sent=%d p50_us=%d p99_us=%d mean_us=%.0f max_us=%d "
    .. "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, sent, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
  io.write("BENCH_STATUSES")
  for k, v in pairs(all) do io.write(" ", k, "=", v) end
  io.write("\nBENCH_BODIES")
  for k, v in pairs(kinds) do io.write(" ", k, "=", v) end
  io.write("\n")
end
"""

LUA_INGEST = r"""
-- POST /api/v1/events: a single event of one of the partners' members; every id unique.
-- A thread reports shifts only for its share of the members (ref index % threads), each in a
-- 90-minute slot of its own, so no two shifts of a member overlap.
local keys = {KEYS}
local prefixes = {PREFIXES}
local counts = {COUNTS}
local run = "RUN"          -- with the tag of this wrk process: ids unique across runs
local epoch = EPOCH       -- slots end an hour before this time
local slot_seconds = SLOT_SECONDS
local n_ingest_threads = THREADS
local first_slot, last_slot = 0, 0
local seq = 0
local next_slot = {}
local headers = {}
local severities = {"low", "medium", "high"}

function init(args)
  common_init(args)
  first_slot = tonumber(args[2])
  last_slot = tonumber(args[3])
  run = run .. args[4]
  for p, key in ipairs(keys) do
    headers[p] = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
  end
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S+00:00", t)
end

function request()
  seq = seq + 1
  started = started + 1
  local p = math.random(#keys)
  local i = math.random(0, counts[p] - 1)
  local now = os.time()
  local id = string.format("%s-%d-%d", run, tid, seq)
  local ref = string.format("%s-%05d", prefixes[p], i)
  local kind = math.random(10)
  local body
  if kind <= 4 then
    -- a member of this thread's share, its next free slot
    i = i - (i % n_ingest_threads) + (tid - 1)
    if i >= counts[p] then i = tid - 1 end
    ref = string.format("%s-%05d", prefixes[p], i)
    local slot = next_slot[ref] or first_slot
    if slot < last_slot then
      next_slot[ref] = slot + 1
      local start = epoch - 3600 - (slot + 1) * slot_seconds + math.random(0, 1500)
      local hours = math.random(2) * 0.5
      body = string.format(
        '{"id":"%s","type":"pioneer.shift","member":"%s","occurred_at":"%s",'
        .. '"data":{"hours":%.1f,"start":"%s","end":"%s","post":"post-%02d"}}',
        id, ref, iso(start), hours, iso(start), iso(start + hours * 3600), math.random(40))
    else
      kind = 5  -- this member's slots are used up: a hazard report instead
    end
  end
  if body == nil and kind <= 7 then
    body = string.format(
      '{"id":"%s","type":"governance.hazard_report","member":"%s","occurred_at":"%s",'
      .. '"data":{"severity":"%s","confirmed":%s}}',
      id, ref, iso(now - math.random(60, 36 * 3600)), severities[math.random(3)],
      math.random(2) == 1 and "true" or "false")
  elseif body == nil then
    body = string.format(
      '{"id":"%s","type":"governance.grid_patrol","member":"%s","occurred_at":"%s",'
      .. '"data":{"minutes":%d,"issues_found":%d}}',
      id, ref, iso(now - math.random(60, 36 * 3600)), math.random(2, 12) * 10,
      math.random(0, 3))
  end
  return wrk.format("POST", "/api/v1/events", headers[p], body)
end

function response(status, headers_, body)
  tally(status, body)
  local s = body and string.match(body, '"status":%s*"([%a_]+)"')
  if s then bodies[s] = (bodies[s] or 0) + 1 end
end
"""

LUA_PAGES = r"""
-- GET /m/ (home) or /m/boards with the session cookie of a rider of the pool
local cookies = {COOKIES}
local paths = {"/m/", "/m/boards"}

function init(args)
  common_init(args)
end

function delay()  -- ms before each request of a connection
  return pause
end

function request()
  started = started + 1
  local path = paths[math.random(2)]
  bodies[path] = (bodies[path] or 0) + 1
  return wrk.format("GET", path, {["Cookie"] = "pp_session=" .. cookies[math.random(#cookies)]})
end

function response(status, headers_, body)
  tally(status, body)
end
"""

LUA_BOARDS = r"""
-- GET /api/v1/leaderboards/<scope>?period=week with a partner's key
local keys = {KEYS}
local scopes = {SCOPES}
local headers = {}

function init(args)
  common_init(args)
  for p, key in ipairs(keys) do headers[p] = {["Authorization"] = "Bearer " .. key} end
end

function delay()  -- ms before each request of a connection
  return pause
end

function request()
  started = started + 1
  local scope = scopes[math.random(#scopes)]
  bodies[scope] = (bodies[scope] or 0) + 1
  return wrk.format("GET", "/api/v1/leaderboards/" .. scope .. "?period=week",
                    headers[math.random(#keys)])
end

function response(status, headers_, body)
  tally(status, body)
end
"""

LUA_FLOOR = r"""
function init(args)
  common_init(args)
end

function request()
  started = started + 1
  return wrk.format("GET", "/healthz")
end

function response(status, headers_, body)
  tally(status, body)
end
"""


def lua_list(values) -> str:
    return ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values)


def write_scripts(tmp: Path, partners: list[Partner], cookies: list[str], scopes: list[str],
                  threads: int, epoch: int, run: str) -> dict[str, Path]:  # fmt: skip
    ingest = (
        LUA_INGEST.replace("{KEYS}", "{" + lua_list(p.key for p in partners) + "}")
        .replace("{PREFIXES}", "{" + lua_list(p.prefix for p in partners) + "}")
        .replace("{COUNTS}", "{" + lua_list(p.members for p in partners) + "}")
        .replace('"RUN"', f'"{run}"')
        .replace("EPOCH", str(epoch))
        .replace("SLOT_SECONDS", str(SLOT_SECONDS))
        .replace("THREADS", str(threads))
    )
    texts = {
        "ingest": ingest,
        "pages": LUA_PAGES.replace("{COOKIES}", "{" + lua_list(cookies) + "}"),
        "boards": LUA_BOARDS.replace(
            "{KEYS}", "{" + lua_list(p.key for p in partners) + "}"
        ).replace("{SCOPES}", "{" + lua_list(scopes) + "}"),
        "floor": LUA_FLOOR,
    }
    paths = {}
    for kind, text in texts.items():
        paths[kind] = tmp / f"{kind}.lua"
        paths[kind].write_text(LUA_COMMON + text, encoding="utf-8")
    return paths


@dataclass
class Result:
    """What one wrk process reported."""

    kind: str
    connections: int
    pause_ms: float = 0.0
    requests: int = 0
    seconds: float = 0.0
    sent: int = 0
    p50: float = float("nan")  # ms, from wrk's --latency distribution
    p99: float = float("nan")
    mean: float = float("nan")
    max: float = float("nan")
    socket_errors: dict = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    bodies: Counter = field(default_factory=Counter)
    output: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def errors(self) -> int:
        # non-2xx answers, and socket errors (a timeout or a reset is a request not answered)
        return self.requests - self.ok + sum(self.socket_errors.values())

    @property
    def unanswered(self) -> int:
        """Requests written whose answer wrk did not wait for when it stopped."""
        return max(self.sent - self.requests, 0)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(kind: str, connections: int, pause: float, output: str) -> Result:
    r = Result(kind, connections, pause, output=output)
    for line in output.splitlines():
        if m := re.match(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", line):
            setattr(r, f"p{m[1]}", float(m[2]) * UNITS[m[3]])
        elif line.startswith("BENCH "):
            values = dict(pair.split("=") for pair in line.split()[1:])
            r.requests = int(values["requests"])
            r.seconds = int(values["duration_us"]) / 1e6
            r.sent = int(values["sent"])
            r.mean = float(values["mean_us"]) / 1e3
            r.max = float(values["max_us"]) / 1e3
            r.socket_errors = {
                k: int(values[k]) for k in ("connect", "read", "write", "timeout") if int(values[k])
            }
        elif line.startswith("BENCH_STATUSES"):
            r.statuses = Counter({int(k): int(v) for k, v in
                                  (pair.split("=") for pair in line.split()[1:])})  # fmt: skip
        elif line.startswith("BENCH_BODIES"):
            r.bodies = Counter(
                {k: int(v) for k, v in (pair.split("=") for pair in line.split()[1:])}
            )
    if not r.seconds:
        raise SystemExit(f"wrk ({kind}) printed no summary:\n{output}")
    return r


def run_wrk(port: int, scripts: dict[str, Path], plan: dict[str, tuple[int, int, list[str]]],
            seconds: float) -> dict[str, Result]:  # fmt: skip
    """Run one wrk per kind at the same time: plan = kind -> (threads, connections, args
    of the script, the first being the pause in ms); wait for all of them."""
    procs = {}
    for kind, (threads, connections, script_args) in plan.items():
        cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
               "--timeout", "10s", "--latency", "-s", str(scripts[kind]),
               f"http://127.0.0.1:{port}", "--", *script_args]  # fmt: skip
        procs[kind] = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    results = {}
    for kind, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise SystemExit(f"wrk ({kind}) did not end in time:\n{out}") from None
        threads, connections, script_args = plan[kind]
        results[kind] = parse_wrk(kind, connections, float(script_args[0]), out)
    return results


def read_pauses(results: dict[str, Result], plan: dict, share: float) -> dict[str, float]:
    """The pause (ms) of each reader connection so that reads are ``share`` of the requests,
    from the rates and mean latencies of a warm-up: half of the reads each kind."""
    ingest = results["ingest"].rate
    target = ingest * share / (1 - share) / 2  # requests/s of each kind of read
    pauses = {}
    for kind in ("pages", "boards"):
        connections = plan[kind][1]
        pauses[kind] = max(0.0, connections * 1000 / max(target, 1e-3) - results[kind].mean)
    return pauses


# --- the report -----------------------------------------------------------------------------


def verify(monitor, loaded_201: int, unanswered: int, history_stored: int, run: str,
           env: dict) -> list[tuple[str, bool]]:  # fmt: skip
    q = lambda sql, *p: monitor.execute(sql, p).fetchone()  # noqa: E731
    (events,) = q("SELECT count(*) FROM events")
    (from_load,) = q("SELECT count(*) FROM events WHERE partner_event_id LIKE %s", f"{run}%")
    (dupes,) = q(
        "SELECT count(*) FROM (SELECT partner_id, partner_event_id FROM events "
        "GROUP BY 1, 2 HAVING count(*) > 1) d"
    )
    (n_members,) = q("SELECT count(*) FROM members")
    bad = monitor.execute(
        "SELECT m.id, m.balance, coalesce(sum(l.points), 0), m.ledger_seq, count(l.id) "
        "FROM members m LEFT JOIN ledger_entries l ON l.member_id = m.id "
        "GROUP BY m.id, m.balance, m.ledger_seq "
        "HAVING m.balance <> coalesce(sum(l.points), 0) OR m.ledger_seq <> count(l.id) "
        "OR count(l.id) <> coalesce(max(l.seq), 0)"
    ).fetchall()
    ledger_rows, ledger_points = q("SELECT count(*), coalesce(sum(points), 0) FROM ledger_entries")
    (balances,) = q("SELECT coalesce(sum(balance), 0) FROM members")
    started = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "--app", "app", "ledger", "verify"], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    verify_s = time.perf_counter() - started
    verdict = (done.stdout.strip().splitlines() or [done.stderr.strip()[-300:]])[-1]
    return [
        (f"events stored by the load (warm-ups and measured run) {from_load:,}: answered 201 "
         f"{loaded_201:,} + {from_load - loaded_201} of the {unanswered} requests wrk left "
         f"unanswered when it stopped; all events {events:,} (history {history_stored:,})",
         loaded_201 <= from_load <= loaded_201 + unanswered
         and events == history_stored + from_load),
        (f"no event id stored twice: {dupes} twice", dupes == 0),
        (f"every member ({n_members:,}): balance == sum of its ledger entries, seq 1..n: "
         f"{'all' if not bad else f'{len(bad)} differ: {bad[:3]}'}", not bad),
        (f"sum of balances {balances:,} == sum of the {ledger_rows:,} ledger entries' points "
         f"{ledger_points:,}", balances == ledger_points),
        (f"flask ledger verify (hash chains, {verify_s:.1f} s): {verdict}", done.returncode == 0),
    ]  # fmt: skip


def print_results(results: dict[str, Result], floor: Result) -> tuple[float, float, int]:
    total = sum(r.requests for r in results.values())
    seconds = max(r.seconds for r in results.values())
    rate = total / seconds
    print(
        f"{'kind':<34} {'conn':>4} {'pause':>6} {'requests':>9} {'req/s':>7} {'mix':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'errors':>6} {'err %':>6}  statuses"
    )
    labels = {
        "ingest": "ingest POST /api/v1/events",
        "pages": "rider pages GET /m/, /m/boards",
        "boards": "leaderboards GET ?period=week",
    }
    for kind, r in results.items():
        statuses = ", ".join(f"{s}×{n:,}" for s, n in sorted(r.statuses.items()))
        if r.socket_errors:
            statuses += f"; socket errors {r.socket_errors}"
        print(
            f"{labels[kind]:<34} {r.connections:>4} {r.pause_ms:>5.1f}ms {r.requests:>9,} "
            f"{r.rate:>7,.0f} {r.requests / total * 100:>5.1f}% {r.p50:>7.1f} {r.p99:>7.1f} "
            f"{r.max:>7.1f} {r.errors:>6} {r.errors / max(r.requests, 1) * 100:>5.2f}%  {statuses}"
        )
    errors = sum(r.errors for r in results.values())
    p99 = max(r.p99 for r in results.values())
    print(
        f"{'all (mixed)':<34} {sum(r.connections for r in results.values()):>4} {'':>7}"
        f"{total:>9,} {rate:>7,.0f} {'100%':>6} {'':>7} {p99:>7.1f} {'':>7} {errors:>6} "
        f"{errors / max(total, 1) * 100:>5.2f}%  (p99: the worst kind's)"
    )
    print(
        f"{'floor: GET /healthz':<34} {floor.connections:>4} {'':>7}{floor.requests:>9,} "
        f"{floor.rate:>7,.0f} {'':>6} {floor.p50:>7.1f} {floor.p99:>7.1f} {floor.max:>7.1f} "
        f"{floor.errors:>6}"
    )
    print(
        f"ratios to the floor ({floor.rate:,.0f} requests/s): mixed {rate / floor.rate:.2f}×, "
        f"ingest {results['ingest'].rate / floor.rate:.2f}× (the readers are paced)"
    )
    ingest = results["ingest"]
    print(
        "event statuses in the 201 answers: "
        + ", ".join(f"{k} {v:,}" for k, v in ingest.bodies.most_common())
        + "; rider pages: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(results["pages"].bodies.items()))
        + f" (requests sent); leaderboard scopes: {len(results['boards'].bodies)}"
    )
    return rate, p99, errors


def print_cpu(cpu: dict[str, float], busy: float, core_seconds: float, requests: int) -> None:
    print(
        f"\nCPU during the measured run: machine {busy * 100:.0f}% busy of "
        f"{os.cpu_count()} cores ({core_seconds:.0f} core-seconds)"
    )
    print(f"{'part':<34} {'CPU s':>7} {'share':>6} {'µs/request':>11}")
    total = sum(cpu.values())
    order = [
        "gunicorn workers", "gunicorn master", "RQ worker default", "RQ worker boards",
        "RQ workers' scheduler forks", "scheduler", "honcho, shells, respawn",
        "other of scripts/serve",
        "PostgreSQL backends (this db)", "PostgreSQL server processes",
        "other PostgreSQL backends", "Redis (the whole server)", "wrk (load generator)",
        "this script", "rest of the machine",
    ]  # fmt: skip
    for part in order + sorted(set(cpu) - set(order)):
        if part in cpu:
            s = cpu[part]
            print(
                f"{part:<34} {s:>7.1f} {s / max(total, 1e-9) * 100:>5.1f}% "
                f"{s / max(requests, 1) * 1e6:>11,.0f}"
            )
    print(f"{'all':<34} {total:>7.1f}")


def print_memory(topology: Topology, redis, rpid: int, own: set[int]) -> None:
    table = proc_table()
    print("\nmemory at the end of the load (MiB; PSS counts shared pages once, split):")
    print(f"{'process':<34} {'pid':>7} {'RSS':>8} {'PSS':>8}  command")
    rows = []
    for pid, (part, cmd) in topology.processes(table).items():
        rows.append((part, pid, *memory(pid), cmd))
    rows.sort()
    for part, pid, rss, pss, cmd in rows:
        print(f"{part:<34} {pid:>7} {rss:>8.1f} {pss:>8.1f}  {cmd[:70]}")
    rss_t = sum(r[2] for r in rows)
    pss_t = sum(r[3] for r in rows)
    print(f"{'scripts/serve, all':<34} {len(rows):>7} {rss_t:>8.1f} {pss_t:>8.1f}")
    info = redis.info("memory")
    rss, pss = memory(rpid)
    print(
        f"{'Redis':<34} {rpid:>7} {rss:>8.1f} {pss:>8.1f}  used_memory "
        f"{info['used_memory'] / 2**20:.1f} MiB (the whole server); db 8: {redis.dbsize():,} keys"
    )
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for pid, part in postgres_processes(table, own).items():
        if part != "monitor":
            groups[part].append(memory(pid))
    for part, mems in sorted(groups.items()):
        print(
            f"{part:<34} {len(mems):>6}× {sum(m[0] for m in mems):>8.1f} "
            f"{sum(m[1] for m in mems):>8.1f}  (sum; each {max(m[0] for m in mems):.1f} MiB RSS "
            f"at most)"
        )


# --- the run --------------------------------------------------------------------------------


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    done = subprocess.run(
        ["bash", "-c", ". scripts/lib/wrk.sh && ensure_wrk"], cwd=ROOT, check=False
    )
    if done.returncode or not shutil.which("wrk"):
        raise SystemExit(
            "this benchmark needs wrk: run `. scripts/lib/wrk.sh && ensure_wrk` as root "
            "(or apt-get install wrk)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s of load, a smaller setup")
    parser.add_argument("--seconds", type=float, default=60, help="the measured load")
    parser.add_argument("--warmup", type=float, default=5, help=f"each of the {WARMUPS} warm-ups")
    parser.add_argument("--floor-seconds", type=float, default=8)
    parser.add_argument("--members", type=int, default=1000, help="per partner (3 partners)")
    parser.add_argument("--history", type=int, default=15000, help="events before the load")
    parser.add_argument("--sessions", type=int, default=300, help="signed-in riders")
    parser.add_argument("--ingest-connections", type=int, default=8)
    parser.add_argument("--ingest-threads", type=int, default=2)
    parser.add_argument("--pages-connections", type=int, default=2)
    parser.add_argument("--boards-connections", type=int, default=2)
    parser.add_argument("--read-share", type=float, default=READ_SHARE)
    parser.add_argument("--setup-clients", type=int, default=8)
    parser.add_argument("--web-concurrency", default=os.environ.get("WEB_CONCURRENCY", "2"))
    parser.add_argument("--web-threads", default=os.environ.get("WEB_THREADS", "8"))
    parser.add_argument(
        "--analyze", action="store_true",
        help="ANALYZE the database after the setup, as autovacuum would have (off here)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=8770)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.floor_seconds, args.warmup = 10, 5, 3
        args.members, args.history, args.sessions = 200, 3000, 60

    import psycopg
    import redis as redis_lib

    ensure_wrk()
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    partner_limit = os.environ.get("RATE_LIMIT_PARTNER", PARTNER_LIMIT_DEFAULT)
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; scripts/serve (honcho: "
        f"gunicorn WEB_CONCURRENCY={args.web_concurrency} WEB_THREADS={args.web_threads}, RQ "
        f"workers default + boards, scheduler) on 127.0.0.1:{args.port}; PostgreSQL database "
        f"{DB_NAME}; {args.redis}; load: {version.split(' [')[0].strip()}"
    )
    print(
        f"rate limits: RATE_LIMIT_PARTNER={partner_limit} per partner (unchanged; the three "
        f"partners share the load), RATE_LIMIT_LOGIN={LOGIN_LIMIT} (raised for the sign-ins "
        "of the setup, all from 127.0.0.1)"
    )
    busy = background_busy()
    print(
        f"machine busy before the run: {busy * 100:.0f}% of the cores"
        + (" (other work is running: expect lower figures)" if busy > 0.1 else "")
    )
    if port_in_use(args.port):
        raise SystemExit(f"port {args.port} is in use: pass --port")

    redis = redis_lib.Redis.from_url(args.redis)
    redis.flushdb()
    admin = psycopg.connect(f"{args.postgres}/postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    topology = monitor = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp_name:
            tmp = Path(tmp_name)
            env = {
                **os.environ,
                "DATABASE_URL": f"{args.postgres}/{DB_NAME}",
                "REDIS_URL": args.redis,
                "SECRET_KEY": secrets.token_hex(32),
                "PORT": str(args.port),
                "WEB_CONCURRENCY": str(args.web_concurrency),
                "WEB_THREADS": str(args.web_threads),
                "RATE_LIMIT_LOGIN": LOGIN_LIMIT,
                "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
            }
            topology = Topology(env, args.port, tmp / "serve.log")
            ready = topology.wait_ready(180)
            parts = Counter(part for part, _ in topology.processes().values())
            print(
                f"scripts/serve ready (/readyz 200) after {ready:.1f} s (migrated, rules "
                f"checked): " + ", ".join(f"{n} {part}" for part, n in sorted(parts.items()))
            )
            partners, cookies, history_stored = setup(args, env, tmp, topology)
            monitor = psycopg.connect(
                env["DATABASE_URL"], autocommit=True, application_name=OWN_CONNECTIONS
            )
            autovacuum = monitor.execute("SHOW autovacuum").fetchone()[0]
            if args.analyze:
                started = time.perf_counter()
                monitor.execute("ANALYZE")
                print(
                    f"ANALYZE of the whole database after the setup (--analyze; autovacuum is "
                    f"{autovacuum} on this server) in {time.perf_counter() - started:.1f} s"
                )
            else:
                print(
                    f"no ANALYZE after the setup (autovacuum is {autovacuum} on this server"
                    + ("; --analyze does what it would)" if autovacuum == "off" else ")")
                )

            rows, _ = stations(ROOT / "rules")
            scopes = [c for c, _, _ in rows] + ["ind.delivery", "ind.express", "partner"]
            scopes = list(dict.fromkeys(scopes))
            run = "ld" + secrets.token_hex(3)
            epoch = int(time.time())
            scripts = write_scripts(tmp, partners, cookies, scopes, args.ingest_threads,
                                    epoch, run)  # fmt: skip
            ingest_plan = (args.ingest_threads, args.ingest_connections)

            def plan(pauses: dict, first: int, last: int, tag: str) -> dict:
                return {
                    "ingest": (*ingest_plan, ["0", str(first), str(last), tag]),
                    "pages": (1, args.pages_connections, [str(round(pauses["pages"]))]),
                    "boards": (1, args.boards_connections, [str(round(pauses["boards"]))]),
                }

            # warm-ups: the first unpaced, each next paced by what the one before measured
            pauses = {"pages": 0.0, "boards": 0.0}
            warm: list[dict[str, Result]] = []
            for step in range(WARMUPS):
                n = WARMUP_SLOTS // WARMUPS
                p = plan(pauses, step * n, (step + 1) * n, f"w{step}")
                warm.append(run_wrk(args.port, scripts, p, args.warmup))
                pauses = read_pauses(warm[-1], p, args.read_share)
            print(
                f"warm-ups ({args.warmup:g} s each, not counted): "
                + "; ".join(", ".join(f"{k} {r.rate:,.0f}/s" for k, r in w.items()) for w in warm)
                + " → reader pauses "
                + ", ".join(f"{k} {v:.1f} ms" for k, v in pauses.items())
            )

            total_connections = sum(c for _, c, _ in plan(pauses, 0, 0, "").values())
            rpid = redis_pid(redis)
            meter = CpuMeter(topology, rpid, monitor)
            meter.start()
            floor = run_wrk(
                args.port, scripts, {"floor": (2, total_connections, ["0"])}, args.floor_seconds
            )["floor"]
            floor_cpu, floor_busy, _ = meter.stop()
            print(
                f"floor: GET /healthz, {args.floor_seconds:g} s, {total_connections} connections: "
                f"{floor.rate:,.0f} requests/s; machine {floor_busy * 100:.0f}% busy, gunicorn "
                f"workers {floor_cpu['gunicorn workers']:.1f} CPU s, wrk "
                f"{floor_cpu['wrk (load generator)']:.1f} s, rest of the machine "
                f"{floor_cpu['rest of the machine']:.1f} s"
            )
            commands = redis_commands(redis)
            meter.start()
            with PgSampler(env["DATABASE_URL"]) as sampler:
                m_plan = plan(pauses, WARMUP_SLOTS, SLOTS, "m")
                results = run_wrk(args.port, scripts, m_plan, args.seconds)
            cpu, busy_share, core_seconds = meter.stop()
            after = redis_commands(redis)
            commands = {
                k: (c - commands.get(k, (0, 0))[0], us - commands.get(k, (0, 0))[1])
                for k, (c, us) in after.items()
            }

            print(
                f"\nmeasured run: {args.seconds:g} s, one wrk per kind at the same time "
                f"(ingest -t{args.ingest_threads}, readers -t1; pauses calibrated for "
                f"{args.read_share:.0%} reads); p50/p99 from wrk --latency"
            )
            rate, p99, errors = print_results(results, floor)
            total_requests = sum(r.requests for r in results.values())
            print_cpu(cpu, busy_share, core_seconds, total_requests)
            print(sampler.line())
            scans = monitor.execute(
                "SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables "
                "WHERE seq_tup_read > 0 ORDER BY seq_tup_read DESC LIMIT 3"
            ).fetchall()
            print(
                "sequential scans since the database was created (pg_stat_user_tables): "
                + ", ".join(f"{t} {n:,} scans, {rows:,} rows" for t, n, rows in scans)
            )
            top = sorted(commands.items(), key=lambda kv: -kv[1][1])[:6]
            print(
                "Redis time by command (the whole server, during the run): "
                + ", ".join(
                    f"{k} {c:,} calls {us / 1e6:.2f} s ({us / max(c, 1):.0f} µs each)"
                    for k, (c, us) in top
                )
            )
            print_memory(topology, redis, rpid, own_backends(monitor))
            with topology.log.open("rb") as log:
                log_lines = sum(1 for _ in log)

            loaded_201 = sum(r.statuses.get(201, 0) for w in [*warm, results]
                             for k, r in w.items() if k == "ingest")  # fmt: skip
            unanswered = sum(w["ingest"].unanswered for w in [*warm, results])
            checks = verify(monitor, loaded_201, unanswered, history_stored, run, env)
            met = rate >= TARGET_RPS and p99 < TARGET_P99_MS and errors == 0
            print()
            print(
                f"target  {'met    ' if met else 'NOT MET'} {rate:,.0f} requests/s mixed "
                f"(target ≥ {TARGET_RPS:,}), p99 {p99:.1f} ms (the worst kind; target < "
                f"{TARGET_P99_MS}), {errors} errors (target 0)"
            )
            for line, ok in checks:
                print(f"check   {'ok     ' if ok else 'FAILED '} {line}")
            print(f"(scripts/serve wrote {log_lines:,} log lines, one per request among them)")
            unexpected = {k: {s: n for s, n in r.statuses.items() if not 200 <= s < 300}
                          for k, r in results.items()}  # fmt: skip
            if errors:
                print(f"unexpected answers: {unexpected}; log tail (no access lines):")
                print(topology.tail())
            topology.stop()
            topology = None
            if not all(ok for _, ok in checks):
                sys.exit(1)
    finally:
        if topology is not None:
            topology.stop()
        if monitor is not None:
            monitor.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.close()
        redis.flushdb()
        redis.close()


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
