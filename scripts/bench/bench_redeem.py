"""Benchmark redemptions over HTTP under contention: gunicorn, PostgreSQL and Redis on this machine.

    .venv/bin/python scripts/bench/bench_redeem.py [--quick] [--clients 8] [--keep]

1. Setup: drops and recreates its own PostgreSQL database ``pp_bench_redeem`` (dropped at the
   end, also on error, unless ``--keep``), migrates it with ``flask db upgrade``, copies the
   shipped rules/ to a temporary directory and adds a bench station
   (``sx.dt.pingcheng.xinjian.bench-station``) offering a hot reward (stock 10,000,000, no
   limit), 200 spread rewards (stock 1,000,000 each), a scarce one (stock 100, one per member
   a day) and a warm-up one; imports the organisations with ``flask orgs import`` and creates a
   partner with ``flask partners create``. Redis: database 8, flushed at the start and at the
   end (kept with ``--keep``). The server is ``app:create_app()`` under gunicorn with
   RULES_DIR pointing at that copy.
2. Members are registered through the API (``PUT /api/v1/members/<ref>``, concurrent clients),
   then given 1,000,000 points each in this process: one ``adjust`` ledger entry per member,
   written by the ledger service (``lock_members``, ``LedgerWriter``, ``write``) in one
   transaction.
3. Floors, in the same run: bench_ingest's bare Flask app (parse the JSON body, one INSERT,
   one transaction per request) under the same gunicorn settings, and an authenticated read
   of the service (``GET /api/v1/members/<ref>``).
4. Redemptions (``POST /api/v1/members/<ref>/redemptions``), each request a different member
   than the ones around it so members' row locks do not collide:
   hot — every request takes the same reward, so every transaction updates one stock row;
   spread — a random one of 200 rewards, little contention;
   scarce — 2,000 members (one request each, shuffled) race for a stock of 100: exactly 100
   must be answered 201 and the rest 409 ``out_of_stock``.
5. Verifies from the database: every balance == the sum of its ledger entries (and seq 1..n);
   redeem entries == redemptions == requests answered 201, each redemption's entry takes its
   cost; each reward's stock counter (``reward_usage``, period ``ever``) == its pending
   redemptions; no negative balance; the scarce reward has exactly its stock taken; no deadlock.

Every phase is bounded by a count and a time limit (scarce only by a generous one), talks only
to 127.0.0.1 and prints requests, answers by status and refusal code, requests/s, p50/p99
latency, unexpected answers, its ratio to each floor and where the CPU went, with how many
PostgreSQL backends were busy and how many of them waited for a lock (mean and most of 50 ms
samples); then requests/s in sixths of the long phases (does a phase slow down as it goes?)
and the update statistics of ``reward_usage`` (the hot stock row is updated in place over and
over; with autovacuum off only page pruning reclaims its old versions). The load generator
(this process: one thread and one keep-alive connection per client) shares the machine's
cores with the server and the database.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import (
    FLOOR_TABLE,
    OWN_CONNECTIONS,
    ROOT,
    Analyzer,
    Client,
    CpuMeter,
    Gunicorn,
    Phase,
    background_busy,
    encode,
    flask_cli,
    register,
    run_threads,
    stations,
)

DB_NAME = "pp_bench_redeem"
STATION = "sx.dt.pingcheng.xinjian.bench-station"
PARTNER = "bench"
POINTS = 1_000_000  # each member's starting balance: no redemption here runs out of points
COST = 10
SPREAD = 200  # rewards of the spread phase
SCARCE_STOCK = 100
HOT_TABLES = "members, ledger_entries, redemptions, reward_usage, partner_members"


def rules_file() -> str:
    """The bench station's rules file: its rewards, no rules."""

    def reward(rid: str, name: str, cost: int, extra: str = "") -> str:
        return f"  - {{id: {rid}, name: {name}, cost: {cost}{extra}}}\n"

    return (
        f"org: {STATION}\nname: 基准测试驿站\n"
        "description: bench_redeem.py 的兑换奖品（由脚本生成，运行后删除）。\n"
        "rewards:\n"
        + reward("bench-warm", "预热奖品", 1, ", stock: {total: 1000000}")
        + reward("bench-hot", "热门奖品", COST, ", stock: {total: 10000000}")
        + reward(
            "bench-scarce",
            "限量奖品",
            COST,
            f", stock: {{total: {SCARCE_STOCK}}}, limit: {{per: day, count: 1}}",
        )
        + "".join(
            reward(f"spread-{i:03d}", f"分散奖品{i:03d}", COST, ", stock: {total: 1000000}")
            for i in range(SPREAD)
        )
    )


class Meter(CpuMeter):
    """bench_ingest's CPU meter and lock sampler, over the backends of this database."""

    def _backends(self):
        return self.conn.execute(
            "SELECT pid, state, wait_event_type FROM pg_stat_activity "
            "WHERE datname = %s AND application_name <> %s",
            (DB_NAME, OWN_CONNECTIONS),
        ).fetchall()

    def stop(self) -> dict:
        out = super().stop()
        out["lock_max"] = max((locked for _, locked in self.samples), default=0)
        return out


class Analyze(Analyzer):
    """ANALYZE the tables redemptions read while the load runs (autovacuum is off here)."""

    def analyze(self) -> None:
        self.conn.execute(f"ANALYZE {HOT_TABLES}")
        self.runs += 1


@dataclass
class Run(Phase):
    """A phase whose answers are counted by status and refusal code."""

    expected: tuple[str, ...] = ("201",)
    unexpected: list[str] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)  # when each answer came, from the start

    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if s in ("200", "201"))

    def windows(self, n: int = 6) -> str:
        """Requests/s in ``n`` equal slices of the phase: does it slow down as it goes?"""
        width = self.seconds / n
        counts = Counter(min(int(t / width), n - 1) for t in self.ends)
        return " ".join(f"{counts[i] / width:,.0f}" for i in range(n))


def run(
    phase: Run,
    port: int,
    key,
    jobs: list[tuple[str, str, bytes | None]],
    seconds: float,
    meter: Meter | None = None,
) -> Run:
    """Send ``jobs`` (method, path, body) once each from ``phase.clients`` threads until all
    are sent or ``seconds`` pass; answers are counted as "201", "409 out_of_stock", ..."""
    next_index = itertools.count().__next__
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        client = Client(port, key)
        mine: list[float] = []
        ends: list[float] = []
        statuses: Counter = Counter()
        odd: list[str] = []
        try:
            while time.monotonic() < deadline and (i := next_index()) < len(jobs):
                method, path, body = jobs[i]
                started = time.perf_counter()
                try:
                    status, data = client.send(method, path, body)
                except (OSError, http.client.HTTPException) as exc:
                    status, data = 599, str(exc).encode()
                mine.append(time.perf_counter() - started)
                ends.append(time.perf_counter() - t0)
                label = str(status)
                with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                    doc = json.loads(data)
                    if status == 409:
                        label = f"409 {doc['error']['code']}"
                    elif status == 201 and "balance" in doc and doc["balance"] < 0:
                        label = "201 negative balance"
                statuses[label] += 1
                if label not in phase.expected and len(odd) < 3:
                    odd.append(f"{method} {path}: {status} {data[:300]!r}")
        finally:
            client.close()
        with lock:
            phase.latencies.extend(mine)
            phase.ends.extend(ends)
            phase.statuses.update(statuses)
            phase.requests += len(mine)
            phase.units += len(mine)
            phase.errors += sum(n for s, n in statuses.items() if s not in phase.expected)
            phase.unexpected.extend(odd)

    t0 = time.perf_counter()  # the workers' completion times are measured from here
    phase.seconds, cpu = run_threads(worker, phase.clients, meter)
    if meter:
        phase.cpu = cpu
    return phase


def redeem_jobs(refs: list[str], rewards: list[str], n: int) -> list:
    """``n`` redemptions of the members in turn, each of ``rewards[i % len(rewards)]``."""
    return [
        (
            "POST",
            f"/api/v1/members/{refs[i % len(refs)]}/redemptions",
            encode({"reward": f"{STATION}:{rewards[i % len(rewards)]}"}),
        )
        for i in range(n)
    ]


# --- setup ----------------------------------------------------------------------------------


def setup(args, env: dict, tmp: Path, admin) -> str:
    """Create and migrate the database, import the organisations, create the partner; return
    its key."""
    admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    started = time.perf_counter()
    flask_cli(env, "db", "upgrade")
    rows, _ = stations(Path(env["RULES_DIR"]))
    csv_path = tmp / "orgs.csv"
    csv_path.write_text(
        "code,name,kind\n" + "".join(f"{c},{n},{k}\n" for c, n, k in rows), encoding="utf-8"
    )
    flask_cli(env, "orgs", "import", str(csv_path))
    key = flask_cli(env, "partners", "create", "基准测试平台", "--code", PARTNER).splitlines()[-1]
    print(
        f"setup: database {DB_NAME} migrated, {len(rows)} organisations imported, partner "
        f"created in {time.perf_counter() - started:.1f} s"
    )
    return key


def grant(env: dict, points: int) -> tuple[int, float]:
    """Give every member ``points`` with one ``adjust`` entry each, in one transaction, through
    the ledger service; return (members, seconds)."""
    from sqlalchemy import select

    from app import create_app
    from app.extensions import db
    from app.models import LedgerKind, Member
    from app.services import ledger

    app = create_app({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "RULES_DIR", "SECRET_KEY")})
    started = time.perf_counter()
    with app.app_context():
        ids = list(db.session.scalars(select(Member.id)))
        writer = ledger.LedgerWriter(states=ledger.lock_members(ids))
        for member_id in ids:
            writer.append(
                member_id, points, LedgerKind.ADJUST, org_code=STATION, reason="基准测试：预置积分"
            )
        ledger.write(writer)
        db.session.commit()
        db.engine.dispose()
    return len(ids), time.perf_counter() - started


# --- checks ---------------------------------------------------------------------------------


def verify(
    monitor, runs: dict[str, Run], racers: int, deadlocks_before: int
) -> list[tuple[str, bool]]:
    """Compare the database with the answers; return (line, ok) pairs."""
    q = lambda sql, *p: monitor.execute(sql, p).fetchone()  # noqa: E731
    answered = sum(r.statuses["201"] for r in runs.values())
    (members,) = q("SELECT count(*) FROM members")
    (bad_balance,) = q(
        "SELECT count(*) FROM members m LEFT JOIN (SELECT member_id, sum(points) s, "
        "count(*) n, max(seq) top FROM ledger_entries GROUP BY member_id) l "
        "ON l.member_id = m.id WHERE m.balance <> coalesce(l.s, 0) "
        "OR m.ledger_seq <> coalesce(l.n, 0) OR coalesce(l.n, 0) <> coalesce(l.top, 0)"
    )
    negative, lowest = q("SELECT count(*) FILTER (WHERE balance < 0), min(balance) FROM members")
    entries, spent = q(
        "SELECT count(*), coalesce(-sum(points), 0) FROM ledger_entries WHERE kind = 'redeem'"
    )
    redemptions, cost, matched = q(
        "SELECT count(*), coalesce(sum(r.cost), 0), count(l.id) FROM redemptions r "
        "LEFT JOIN ledger_entries l ON l.id = r.redeem_entry_id AND l.member_id = r.member_id "
        "AND l.points = -r.cost AND l.kind = 'redeem'"
    )
    usage = monitor.execute(
        "SELECT coalesce(u.key, 'reward:' || p.reward), coalesce(u.count, 0), coalesce(p.n, 0) "
        "FROM (SELECT key, count FROM reward_usage WHERE key LIKE 'reward:%' "
        "AND period = 'ever') u FULL JOIN (SELECT reward, count(*) n FROM redemptions "
        "WHERE status = 'pending' GROUP BY reward) p ON u.key = 'reward:' || p.reward"
    ).fetchall()
    differ = [row for row in usage if row[1] != row[2]]
    by_reward = dict(monitor.execute("SELECT reward, count(*) FROM redemptions GROUP BY reward"))
    stored = {
        "warm-up": by_reward.get(f"{STATION}:bench-warm", 0),
        "hot": by_reward.get(f"{STATION}:bench-hot", 0),
        "spread": sum(n for r, n in by_reward.items() if r.startswith(f"{STATION}:spread-")),
        "scarce": by_reward.get(f"{STATION}:bench-scarce", 0),
    }
    (deadlocks,) = q("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", DB_NAME)
    scarce = runs["scarce"]
    won, lost = scarce.statuses["201"], scarce.statuses["409 out_of_stock"]
    per_phase = ", ".join(f"{k} {stored[k]:,}/{runs[k].statuses['201']:,}" for k in stored)
    return [
        (
            f"{members:,} members: balance == sum of their ledger entries, seq 1..n: "
            f"{'all' if not bad_balance else f'{bad_balance} differ'}",
            bad_balance == 0,
        ),
        (f"negative balances: {negative} (lowest balance {lowest:,})", negative == 0),
        (
            f"redeem entries {entries:,} == redemptions {redemptions:,} == answered 201 "
            f"{answered:,}; each redemption's entry takes its cost: {matched:,}; points spent "
            f"{spent:,} == costs {cost:,}",
            entries == redemptions == answered == matched and spent == cost,
        ),
        (
            f"redemptions stored / answered 201 by phase: {per_phase}",
            all(stored[k] == runs[k].statuses["201"] for k in stored),
        ),
        (
            f"stock counters == pending redemptions for {len(usage)} rewards: "
            f"{'all' if not differ else f'{len(differ)} differ: {differ[:3]}'}",
            not differ,
        ),
        (
            f"scarce: {scarce.requests:,} members raced for {SCARCE_STOCK}: {won} answered 201 "
            f"(exactly {SCARCE_STOCK}), {lost:,} 409 out_of_stock, other {scarce.errors}",
            won == SCARCE_STOCK == stored["scarce"]
            and won + lost == scarce.requests
            and scarce.requests == racers,
        ),
        (
            f"deadlocks detected by PostgreSQL during the run: {deadlocks - deadlocks_before}",
            deadlocks == deadlocks_before,
        ),
    ]


def table_stats(monitor, table: str) -> str:
    """Size and update statistics of ``table``: the hot stock row is updated in place (HOT)
    over and over, and with autovacuum off only page pruning reclaims its old versions."""
    rows, pages, updates, hot, dead = monitor.execute(
        f"SELECT (SELECT count(*) FROM {table}), "
        "pg_relation_size(relid) / current_setting('block_size')::int, "
        "n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables WHERE relname = %s",
        (table,),
    ).fetchone()
    return (
        f"{table} after the run: {rows:,} rows in {pages:,} pages; {updates:,} updates, "
        f"{hot:,} of them HOT; {dead:,} dead row versions"
    )


# --- report ---------------------------------------------------------------------------------

HEADER = (
    f"{'phase':<34} {'cl':>3} {'requests':>8} {'s':>6} {'req/s':>7} {'ok/s':>7} "
    f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'÷floor':>7} {'÷GET':>6}  answers"
)
CPU_HEADER = (
    f"{'CPU µs per request':<34} {'app':>8} {'postgres':>8} {'loadgen':>8} {'other':>8}  "
    f"{'busy':>5}  {'pg active':>9} {'locked':>6} {'most':>4}"
)


def line(p: Run, floor: Run, get: Run) -> str:
    ratios = [
        f"{p.request_rate / f.request_rate:.2f}×" if f.request_rate and p is not f else "–"
        for f in (floor, get)
    ]
    answers = ", ".join(f"{s} ×{n:,}" for s, n in sorted(p.statuses.items()))
    return (
        f"{p.name:<34} {p.clients:>3} {p.requests:>8,} {p.seconds:>6.1f} "
        f"{p.request_rate:>7,.0f} {p.ok() / p.seconds if p.seconds else 0:>7,.0f} "
        f"{p.percentile(0.5):>7.1f} {p.percentile(0.99):>7.1f} {p.errors:>6} "
        f"{ratios[0]:>7} {ratios[1]:>6}  {answers}"
    )


def cpu_line(p: Run) -> str:
    c, n = p.cpu, max(p.requests, 1)
    return (
        f"{p.name:<34} {c['app'] / n * 1e6:>8,.0f} {c['pg'] / n * 1e6:>8,.0f} "
        f"{c['gen'] / n * 1e6:>8,.0f} {c['other'] / n * 1e6:>8,.0f}  {c['busy'] * 100:>4.0f}%  "
        f"{c['active']:>9.1f} {c['lock']:>6.1f} {c['lock_max']:>4}"
    )


# --- the run --------------------------------------------------------------------------------


def phases(args, key: str, refs: list[str], server: Gunicorn, meter: Meter) -> dict[str, Run]:
    """The member GET floor and the redemption phases; runs by name (warm-up included)."""
    port, out = server.port, {}
    gets = [("GET", f"/api/v1/members/{refs[i % len(refs)]}", None) for i in range(args.reads)]
    # warm-up: rules loaded, connection pools filled, redemption statements compiled
    out["warm-up GET"] = run(
        Run("warm-up GET", args.clients, expected=("200",)), port, key, gets[:300], 30
    )
    out["warm-up"] = run(
        Run("warm-up redemptions", args.clients),
        port,
        key,
        redeem_jobs(refs, ["bench-warm"], 200),
        30,
    )
    out["get"] = run(
        Run("floor: GET /members/<ref> (app)", args.clients, expected=("200",)),
        port,
        key,
        gets,
        args.seconds,
        meter,
    )
    out["hot"] = run(
        Run("hot: 1 reward, stock row shared", args.clients),
        port,
        key,
        redeem_jobs(refs, ["bench-hot"], args.redeems),
        args.seconds,
        meter,
    )
    rng = random.Random(8)
    spread = [f"spread-{rng.randrange(SPREAD):03d}" for _ in range(args.redeems)]
    out["spread"] = run(
        Run(f"spread: {SPREAD} rewards", args.clients),
        port,
        key,
        redeem_jobs(refs, spread, args.redeems),
        args.seconds,
        meter,
    )
    racers = refs[: args.racers]
    rng.shuffle(racers)
    scarce = Run(
        f"scarce: {len(racers):,} members, stock {SCARCE_STOCK}",
        args.clients,
        expected=("201", "409 out_of_stock"),
    )
    out["scarce"] = run(
        scarce,
        port,
        key,
        redeem_jobs(racers, ["bench-scarce"], len(racers)),
        max(args.seconds, 300),
        meter,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (~2 minutes)")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--racers", type=int, default=2000, help="members racing for the scarce")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--redeems", type=int, default=40_000, help="hot and spread, at most")
    parser.add_argument("--reads", type=int, default=40_000, help="floor requests at most")
    parser.add_argument("--seconds", type=float, default=60, help="time limit of a phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="gthread")
    parser.add_argument("--threads", type=int, default=4, help="per gthread worker")
    parser.add_argument("--port", type=int, default=8785)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--keep", action="store_true", help="keep the database and Redis DB 8")
    args = parser.parse_args()
    if args.quick:
        args.redeems, args.reads, args.seconds = 8000, 8000, 20
    args.racers = min(args.racers, args.members)

    import psycopg
    import redis

    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; gunicorn -w {args.workers} "
        f"-k {args.worker_class}"
        + (f" --threads {args.threads}" if args.worker_class == "gthread" else "")
        + f"; PostgreSQL database {DB_NAME}; {args.redis}; {args.clients} clients"
    )
    busy = background_busy()
    print(
        f"machine busy before the run: {busy * 100:.0f}% of the cores"
        + (" (other work is running: expect lower figures)" if busy > 0.1 else "")
    )
    admin = psycopg.connect(f"{args.postgres}/postgres", autocommit=True)
    r = redis.Redis.from_url(args.redis)
    r.flushdb()
    server = floor_server = monitor = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench_redeem_") as tmp_name:
            tmp = Path(tmp_name)
            rules_dir = tmp / "rules"
            shutil.copytree(ROOT / "rules", rules_dir)
            (rules_dir / f"{STATION}.yaml").write_text(rules_file(), encoding="utf-8")
            env = {
                **os.environ,
                "DATABASE_URL": f"{args.postgres}/{DB_NAME}",
                "REDIS_URL": args.redis,
                "RULES_DIR": str(rules_dir),
                "SECRET_KEY": "bench-redeem",
            }
            key = setup(args, env, tmp, admin)
            monitor = psycopg.connect(
                env["DATABASE_URL"], autocommit=True, application_name=OWN_CONNECTIONS
            )
            (deadlocks_before,) = monitor.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (DB_NAME,)
            ).fetchone()
            refs = [f"rider-{i:06d}" for i in range(args.members)]

            # the floor: bench_ingest's bare Flask app, one INSERT per request
            monitor.execute(
                f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, ref text NOT NULL, "
                "member text NOT NULL, type text NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT now())"
            )
            floor_env = {**env, "BENCH_FLOOR_DSN": env["DATABASE_URL"]}
            floor_server = Gunicorn(
                "bench_ingest:floor_app()",
                args.port + 1,
                args,
                floor_env,
                tmp / "floor.log",
                pythonpath=Path(__file__).parent,
            )
            floor_server.wait_ready()
            bodies = [
                (
                    "POST",
                    "/floor",
                    encode({"id": f"r-{i}", "member": refs[i % len(refs)], "type": "redeem"}),
                )
                for i in range(args.reads + 200)
            ]
            meter = Meter(floor_server, env["DATABASE_URL"])
            try:
                run(Run("warm-up", args.clients), floor_server.port, None, bodies[:200], 10)
                floor = run(
                    Run("floor: Flask + 1 INSERT", args.clients),
                    floor_server.port,
                    None,
                    bodies[200:],
                    args.seconds,
                    meter,
                )
            finally:
                meter.close()
                floor_server.stop()
                floor_server = None

            server = Gunicorn("app:create_app()", args.port, args, env, tmp / "app.log")
            server.wait_ready()
            bodies_in = [
                {
                    "name": f"骑手{i:05d}",
                    "phone": f"137{i:08d}",
                    "primary_org": STATION,
                    "party_member": i % 3 == 0,
                    "industry": "delivery",
                }
                for i in range(args.members)
            ]
            members = register(
                server.port, key, [(ref, STATION) for ref in refs], bodies_in, args.clients
            )
            n, grant_s = grant(env, POINTS)
            print(
                f"members: {members.units:,} registered through the API in {members.seconds:.1f}"
                f" s ({members.request_rate:,.0f} requests/s, p99 "
                f"{members.percentile(0.99):.1f} ms, errors {members.errors}); {n:,} given "
                f"{POINTS:,} points each (one adjust entry, one transaction) in {grant_s:.1f} s"
            )
            autovacuum = monitor.execute("SHOW autovacuum").fetchone()[0]
            print(f"autovacuum is {autovacuum}: ANALYZE ({HOT_TABLES}) every 10 s during the load")
            with Analyze(env["DATABASE_URL"], 10):
                meter = Meter(server, env["DATABASE_URL"])
                try:
                    runs = phases(args, key, refs, server, meter)
                finally:
                    meter.close()
            server.stop()
            log = server.tail()
            server = None

            get = runs["get"]
            shown = [floor, get, runs["hot"], runs["spread"], runs["scarce"]]
            print()
            print(HEADER)
            for p in [runs["warm-up"], *shown]:
                print(line(p, floor, get))
            print()
            print(CPU_HEADER)
            for p in shown:
                print(cpu_line(p))
            print(
                "(app: gunicorn workers; postgres: backends of the benchmark database; loadgen: "
                "this process; other: the rest of the machine, redis-server included; busy: "
                "share of both cores; pg active / locked / most: backends running a statement "
                "/ of them waiting for a lock, mean of 50 ms samples / most at once)"
            )
            print("requests/s in sixths of each phase, first to last:")
            for p in shown[1:4]:
                print(f"  {p.name:<32} {p.windows()}")
            print(table_stats(monitor, "reward_usage"))
            print()
            checks = verify(monitor, runs, args.racers, deadlocks_before)
            errors = sum(p.errors for p in [floor, members, *runs.values()])
            checks.append((f"unexpected answers in all phases: {errors}", errors == 0))
            for text, ok in checks:
                print(f"check   {'ok     ' if ok else 'FAILED '} {text}")
            odd = [s for p in [floor, *runs.values()] for s in p.unexpected]
            if odd or errors:
                print("unexpected answers (first of each client):\n  " + "\n  ".join(odd))
                print(f"gunicorn log tail:\n{log}")
            if not all(ok for _, ok in checks):
                sys.exit(1)
    finally:
        for proc in (server, floor_server):
            if proc is not None:
                proc.stop()
        if monitor is not None:
            monitor.close()
        if not args.keep:
            with contextlib.suppress(Exception):
                r.flushdb()
            admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        r.close()
        admin.close()


if __name__ == "__main__":
    main()
