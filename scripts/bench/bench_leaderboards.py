"""Benchmark the leaderboards at scale: live updates, reads through the API, a full rebuild and
the Redis memory of every board, each against the raw Redis command in the same run.

    .venv/bin/python scripts/bench/bench_leaderboards.py [--quick] [--members 1000000]
        [--entries 10000000] [--keep] [--reuse] [--profile]

1. Data: drops and recreates its own PostgreSQL database ``pp_bench_boards`` (dropped at the
   end, also on error, unless ``--keep``; ``--reuse`` runs again on a kept one), migrates it with
   ``flask db upgrade``, creates a partner with ``flask partners create`` and loads with COPY: a
   province (``sx``), its 11 cities, districts, streets and ~2,000 stations, the industry
   committees; the members (Chinese names, one of four industries, one in ten also at a second
   station of its city) with the partner's references; and the ledger: per member seq 1..n
   (a skewed number of entries per member), mostly awards with some reversals, adjustments and
   redemptions (which boards ignore), over the last 14 months with a fifth of them in the last
   three weeks, so the current and previous week, month and year and all time all have boards.
   The ledger's two secondary indexes are built after the COPY, foreign-key triggers are off
   while loading (``session_replication_role = replica``; the rows are consistent by
   construction); then ANALYZE. Redis: database 10, flushed at the start and at the end (kept
   with ``--keep``).
2. Full rebuild: ``rebuild_boards`` in this process (``check_drift=False``, Redis empty),
   timed by stage from its progress callbacks, with the Redis memory it adds and the peak RSS it
   adds to this process. The floor, in the same run: a raw pipelined ZADD of sample lines into
   scratch keys of 100,000 lines (1,000 members per ZADD, as the rebuild sends them), whose rate
   gives the least time the rebuild's lines take to write, and the rebuild's own SQL statement
   run alone (server-side cursor, rows fetched and dropped).
3. Live updates: what ``record`` does (``increments`` then ``LiveBoards.apply``, one Lua call)
   for synthetic awards of random members in the current week, one per call (a single event)
   and 64 per call (a group commit); against one ZINCRBY round trip and a pipeline of ZINCRBY on
   the same (board, member) pairs.
4. Reads: serves ``app:create_app()`` under gunicorn (``-w 2 -k gthread --threads 4``) and
   reads the top 100 of boards of every level (province, cities, stations, an industry, the
   partner's; several periods and categories) and random members' ranks
   (``/members/<ref>/ranks``: every board of the member, 4 periods × 5 categories) from 1 and
   from 4 clients (keep-alive connections, threads of this process); against ZREVRANGE 0 99
   WITHSCORES, ZREVRANK and the app's own Redis scripts for the same boards, called from
   redis-py (hiredis) in this process.
5. ``--profile``: samples the rebuild with py-spy (wall clock, idle included) and prints where
   its time goes, runs EXPLAIN ANALYZE on its statement, and profiles read requests in process
   (Flask test client, cProfile) with their SQL statement counts.

At the end: a table of every figure with its raw counterpart and their ratio, the target lines,
and, below the full size, a linear extrapolation to it (labelled as such: lines, rebuild time
and memory grow linearly with members and entries). A watchdog stops the run (and cleans up) if
the machine's available memory falls below ``--min-free-gib``: at the full size the rebuild
holds every line in Python (~120 bytes each) while Redis fills (~105 bytes each).

Targets (issue #4), at 1,000,000 members and 10,000,000 ledger entries: top-100 and
member-rank p99 < 10 ms through the API; a full rebuild of every board < 120 s; Redis memory
< 2 GiB.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import cProfile
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
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import (
    BIN,
    ROOT,
    Client,
    Gunicorn,
    background_busy,
    flask_cli,
    machine_ticks,
    run_threads,
    stop_process,
)

DB_NAME = "pp_bench_boards"
PARTNER = "bench"
DAY = 86400
WINDOW_DAYS = 425  # about 14 months of history
RECENT_DAYS = 21  # a fifth of the entries fall in the last three weeks
GROUP = 64  # awards per call in the group-commit case (INGEST_GROUP_MAX)
GIB = 1024**3

# code, name, population in millions (weights the number of stations of each city)
CITIES = [
    ("ty", "太原", 5.4),
    ("dt", "大同", 3.1),
    ("yq", "阳泉", 1.3),
    ("cz", "长治", 3.2),
    ("jc", "晋城", 2.2),
    ("sz", "朔州", 1.6),
    ("jz", "晋中", 3.4),
    ("yc", "运城", 4.8),
    ("xz", "忻州", 2.7),
    ("lf", "临汾", 4.0),
    ("ll", "吕梁", 3.4),
]
INDUSTRIES = [
    ("delivery", "网络餐饮外卖行业党委", 45),
    ("express", "快递行业党委", 30),
    ("transport", "交通运输行业党委", 15),
    ("internet", "互联网行业党委", 10),
]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍"
    "建国红志文斌鹏辉海波宁浩宇晨鑫龙飞雪梅琳欣怡轩博然俊凯"
)
# category, rule, reason, weight (of 10)
AWARDS = [
    ("pioneer", "sx:pioneer-shift", "先锋岗值守", 5),
    ("governance", "sx:hazard-report", "隐患随手拍（已核实）", 3),
    ("volunteer", "sx:volunteer-hours", "社区志愿服务", 2),
]
LEDGER_COLUMNS = (
    "id, member_id, seq, points, kind, rule, rules_version, org_code, partner_id, category, "
    "occurred_at, created_at, reason, reverses_id, prev_hash, hash"
)
MEMBER_COLUMNS = (
    "id, display_name, party_member, industry, primary_org_id, tags, balance, lifetime_points, "
    "ledger_seq, ledger_head, version, hidden, no_phone_merge, created_at, updated_at"
)
SECONDARY_INDEXES = {  # as migrations/versions/a550c5f0376d_initial_schema.py makes them
    "ix_ledger_entries_org_occurred": "ledger_entries (org_code, occurred_at)",
    "ix_ledger_entries_event": "ledger_entries (event_id)",
}


# --- measuring ----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Percentile of seconds, in ms."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_peak() -> int:
    """This process's peak resident set (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def reset_rss_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


class Watchdog:
    """Interrupts the main thread (the run then cleans up) when the machine runs short of
    memory: the full size holds the boards twice over (Python while computing, then Redis)."""

    def __init__(self, min_free: int):
        self.min_free = min_free
        self.lowest = mem_available()
        self.fired = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="watchdog")

    def _loop(self) -> None:
        while not self.done.wait(0.25):
            free = mem_available()
            self.lowest = min(self.lowest, free)
            if free < self.min_free and not self.fired:
                self.fired = True
                print(
                    f"\nWATCHDOG: {free / GIB:.1f} GiB available (< {self.min_free / GIB:.1f}): "
                    "stopping the run",
                    flush=True,
                )
                _thread.interrupt_main()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


def redis_cpu(r) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def data_members(app) -> int:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Member

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Member)) or 0


def command_usec(r) -> Counter:
    """Microseconds Redis has spent in each command since its start (INFO commandstats)."""
    out: Counter = Counter()
    for name, stats in r.info("commandstats").items():
        out[name.removeprefix("cmdstat_")] = int(stats["usec"])
    return out


def redis_used(r) -> int:
    return int(r.info("memory")["used_memory"])


def code_version() -> str:
    """The commit measured, and the files of app/ changed in the working tree."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "app"], capture_output=True, text=True
    ).stdout.split("\n")
    changed = [line[3:] for line in dirty if line.strip()]
    return f"code: commit {head.stdout.strip() or '?'}" + (
        f", app/ changed in the working tree: {', '.join(changed)}" if changed else ""
    )


def say(text: str) -> None:
    print(text, flush=True)


# --- the data -----------------------------------------------------------------------------------


@dataclass
class Data:
    """What the later phases need to know of the loaded data (index m is member id m + 1)."""

    key: str
    partner_id: int
    stations: list[str]
    station_ids: list[int]
    station_of: array = field(default_factory=lambda: array("H"))
    second_of: array = field(default_factory=lambda: array("i"))  # station index or -1
    industry_of: array = field(default_factory=lambda: array("B"))
    entries_of: array = field(default_factory=lambda: array("I"))

    @property
    def members(self) -> int:
        return len(self.station_of)

    def industry(self, m: int) -> str:
        return INDUSTRIES[self.industry_of[m]][0]


def org_tree(n_stations: int) -> tuple[list[tuple[str, str, str]], list[str], list[int]]:
    """(code, name, kind) rows of the tree, the station codes and each station's city."""
    rows = [("sx", "山西省", "province"), ("ind", "行业党委", "industry")]
    rows += [(f"ind.{code}", name, "industry") for code, name, _ in INDUSTRIES]
    stations, city_of = [], []
    total = sum(pop for _, _, pop in CITIES)
    for ci, (c, name, pop) in enumerate(CITIES):
        city = f"sx.{c}"
        rows.append((city, f"{name}市", "city"))
        n = max(6, round(n_stations * pop / total))
        streets = []
        for d in range(1, max(2, round(n / 36)) + 1):
            district = f"{city}.q{d:02d}"
            rows.append((district, f"{name}第{d}区", "district"))
            for j in range(1, 7):
                streets.append(f"{district}.jd{j:02d}")
                rows.append((streets[-1], f"{name}{d}区第{j}街道", "street"))
        for s in range(n):
            code = f"{streets[s % len(streets)]}.station-{s // len(streets) + 1:02d}"
            rows.append((code, f"{name}第{s + 1}暖心驿站", "station"))
            stations.append(code)
            city_of.append(ci)
    return rows, stations, city_of


def ts_formatter():
    """Epoch seconds → 'YYYY-MM-DD HH:MM:SS+00' (COPY text), with days and times cached."""
    days: dict[int, str] = {}
    tod = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

    def ts(t: int) -> str:
        d, s = divmod(t, DAY)
        day = days.get(d)
        if day is None:
            day = days[d] = time.strftime("%Y-%m-%d", time.gmtime(d * DAY))
        return f"{day} {tod[s]}+00"

    return ts


def entry_counts(members: int, entries: int, rng: random.Random) -> array:
    """Entries per member: skewed (Pareto), summing to ``entries``; some members have none."""
    weights = [rng.paretovariate(2.5) - 0.9 for _ in range(members)]
    scale = entries / sum(weights)
    counts = array("I", (int(w * scale) for w in weights))
    short = entries - sum(counts)
    for m in rng.sample(range(members), min(short, members)):
        counts[m] += 1
    short = entries - sum(counts)
    for i in range(short):  # only when entries > 2 × members or so: round robin
        counts[i % members] += 1
    return counts


def load(args, env: dict, admin, rng: random.Random) -> Data:
    """Create, migrate and fill the database; return what the later phases need."""
    import psycopg

    admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    started = time.perf_counter()
    flask_cli(env, "db", "upgrade")
    key = flask_cli(env, "partners", "create", "基准测试平台", "--code", PARTNER).splitlines()[-1]
    say(f"setup: {DB_NAME} migrated, partner created in {time.perf_counter() - started:.1f} s")

    rows, stations, city_of = org_tree(args.stations)
    by_city = defaultdict(list)
    for s, ci in enumerate(city_of):
        by_city[ci].append(s)
    now_s = int(time.time())
    ts = ts_formatter()
    now_text = ts(now_s)
    members, entries = args.members, args.entries
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading
        conn.execute("SET maintenance_work_mem = '1GB'")
        partner_id = conn.execute("SELECT id FROM partners WHERE code = %s", (PARTNER,)).fetchone()[
            0
        ]
        conn.execute("CREATE TABLE bench_meta (name text PRIMARY KEY, value text NOT NULL)")
        conn.execute("INSERT INTO bench_meta VALUES ('key', %s)", (key,))
        for name in SECONDARY_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        t0 = time.perf_counter()
        org_id = {}
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY organisations (id, code, name, kind, parent_code, depth, created_at, "
                "updated_at) FROM STDIN"
            ) as copy,
        ):
            for i, (code, name, kind) in enumerate(rows, 1):
                org_id[code] = i
                parent = code.rsplit(".", 1)[0] if "." in code else None
                copy.write_row((i, code, name, kind, parent, code.count("."), now_text, now_text))
        station_ids = [org_id[s] for s in stations]

        # members: a station each (skewed sizes), one in ten also at a second station
        weights = [rng.lognormvariate(0, 0.6) for _ in stations]
        station_of = array("H", rng.choices(range(len(stations)), weights=weights, k=members))
        second_of = array("i", [-1]) * members
        for m in range(members):
            if rng.random() < 0.1:
                peers = by_city[city_of[station_of[m]]]
                other = peers[rng.randrange(len(peers))]
                if other != station_of[m]:
                    second_of[m] = other
        ind_weights = [w for _, _, w in INDUSTRIES]
        industry_of = array(
            "B", rng.choices(range(len(INDUSTRIES)), weights=ind_weights, k=members)
        )
        counts = entry_counts(members, entries, rng)
        balance = array("q", bytes(8 * members))
        lifetime = array("q", bytes(8 * members))
        say(
            f"generated {len(rows):,} organisations ({len(stations):,} stations) and "
            f"{members:,} members in {time.perf_counter() - t0:.1f} s; loading the ledger ..."
        )

        t0 = time.perf_counter()
        written = ledger_copy(
            conn,
            members,
            counts,
            stations,
            station_of,
            second_of,
            partner_id,
            now_s,
            ts,
            balance,
            lifetime,
            rng,
        )
        ledger_s = time.perf_counter() - t0
        say(f"  ledger: {written:,} rows in {ledger_s:.1f} s ({written / ledger_s:,.0f} rows/s)")

        t0 = time.perf_counter()
        start_text = ts(now_s - (WINDOW_DAYS + 30) * DAY)
        with conn.cursor() as cur, cur.copy(f"COPY members ({MEMBER_COLUMNS}) FROM STDIN") as copy:
            buf = []
            for m in range(members):
                mid = m + 1
                name = SURNAMES[rng.randrange(len(SURNAMES))] + "".join(
                    rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))
                )
                n = counts[m]
                head = f"{mid:032x}{n:032x}" if n else ""
                party = "t" if rng.random() < 0.4 else "f"
                hidden = "t" if rng.random() < 0.01 else "f"
                buf.append(
                    f"{mid}\t{name}\t{party}\t{INDUSTRIES[industry_of[m]][0]}\t"
                    f"{station_ids[station_of[m]]}\t[]\t{balance[m]}\t{lifetime[m]}\t{n}\t{head}"
                    f"\t0\t{hidden}\tf\t{start_text}\t{now_text}\n"
                )
                if len(buf) >= 20_000:
                    copy.write("".join(buf))
                    buf = []
            copy.write("".join(buf))
        with (
            conn.cursor() as cur,
            cur.copy("COPY member_orgs (member_id, org_id, org_code) FROM STDIN") as copy,
        ):
            for m in range(members):
                for s in (station_of[m], second_of[m]):
                    if s >= 0:
                        copy.write(f"{m + 1}\t{station_ids[s]}\t{stations[s]}\n")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY partner_members (id, partner_id, ref, member_id, created_at) FROM STDIN"
            ) as copy,
        ):
            buf = []
            for m in range(members):
                buf.append(f"{m + 1}\t{partner_id}\tm{m + 1:07d}\t{m + 1}\t{start_text}\n")
                if len(buf) >= 50_000:
                    copy.write("".join(buf))
                    buf = []
            copy.write("".join(buf))
        members_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for name, definition in SECONDARY_INDEXES.items():
            conn.execute(f"CREATE INDEX {name} ON {definition}")
        for table in ("organisations", "members", "partner_members", "ledger_entries"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("ANALYZE")
        analyze_s = time.perf_counter() - t0
        (size,) = conn.execute("SELECT pg_total_relation_size('ledger_entries')").fetchone()
    say(
        f"  members, member_orgs, partner_members: {members_s:.1f} s; ledger's secondary "
        f"indexes {index_s:.1f} s; ANALYZE {analyze_s:.1f} s; ledger_entries with indexes "
        f"{size / GIB:.2f} GiB"
    )
    return Data(key, partner_id, stations, station_ids, station_of, second_of, industry_of, counts)


def ledger_copy(
    conn,
    members,
    counts,
    stations,
    station_of,
    second_of,
    partner_id,
    now_s,
    ts,
    balance,
    lifetime,
    rng,
) -> int:
    """COPY every member's entries, seq 1..n in time order; fill balance and lifetime."""
    rnd = rng.random
    window, recent = WINDOW_DAYS * DAY, RECENT_DAYS * DAY
    latest = now_s - 60
    award_of = [a for a in AWARDS for _ in range(a[3])]
    total = sum(counts)
    eid = 0
    report_every = max(total // 5, 1)
    next_report = report_every
    started = time.perf_counter()
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY ledger_entries ({LEDGER_COLUMNS}) FROM STDIN") as copy,
    ):
        buf: list[str] = []
        for m in range(members):
            n = counts[m]
            if not n:
                continue
            mid = m + 1
            home = stations[station_of[m]]
            second = stations[second_of[m]] if second_of[m] >= 0 else None
            times = sorted(
                latest - int((recent if rnd() < 0.2 else window) * rnd()) for _ in range(n)
            )
            bal = life = 0
            prev = "0" * 64
            last = None  # (id, points, category, rule) of the last award not yet reversed
            for seq in range(1, n + 1):
                eid += 1
                t = times[seq - 1]
                created = min(t + 1 + int(600 * rnd()), now_s)
                r = rnd()
                org = second if second is not None and rnd() < 0.3 else home
                rev = "\\N"
                if r < 0.03 and last is not None:
                    kind, rule, version, partner = "reverse", last[3], "2026.11", partner_id
                    points, category, reason, rev = -last[1], last[2], "更正：撤销一条奖励", last[0]
                    last = None
                elif r < 0.04:
                    kind, rule, version, partner = "adjust", "\\N", "\\N", "\\N"
                    points, category, reason = int(10 * rnd()) + 1, "volunteer", "组织表彰"
                elif r < 0.12 and bal >= 20:
                    kind, rule, version, partner = "redeem", "\\N", "\\N", "\\N"
                    points = -10 * (1 + int(rnd() * min(bal // 10, 5)))
                    category, reason, org = "other", "积分兑换：爱心礼包", home
                else:
                    category, rule, reason, _ = award_of[int(10 * rnd())]
                    kind, version, partner = "award", "2026.11", partner_id
                    points = int(20 * rnd()) + 1
                    last = (eid, points, category, rule)
                bal += points
                if kind in ("award", "adjust"):
                    life += points
                h = f"{mid:032x}{seq:032x}"
                buf.append(
                    f"{eid}\t{mid}\t{seq}\t{points}\t{kind}\t{rule}\t{version}\t{org}\t{partner}"
                    f"\t{category}\t{ts(t)}\t{ts(created)}\t{reason}\t{rev}\t{prev}\t{h}\n"
                )
                prev = h
            balance[m], lifetime[m] = bal, life
            if len(buf) >= 20_000:
                copy.write("".join(buf))
                buf = []
                if eid >= next_report:
                    next_report += report_every
                    elapsed = time.perf_counter() - started
                    say(f"  ledger: {eid:,} / {total:,} rows, {elapsed:.0f} s")
        copy.write("".join(buf))
    return eid


def reuse(env: dict) -> Data:
    """What ``load`` returns, read back from a database kept with ``--keep``."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        key = conn.execute("SELECT value FROM bench_meta WHERE name = 'key'").fetchone()[0]
        partner_id = conn.execute("SELECT id FROM partners WHERE code = %s", (PARTNER,)).fetchone()[
            0
        ]
        orgs = conn.execute(
            "SELECT id, code FROM organisations WHERE kind = 'station' ORDER BY id"
        ).fetchall()
        index = {oid: i for i, (oid, _) in enumerate(orgs)}
        inds = {name: i for i, (name, _, _) in enumerate(INDUSTRIES)}
        data = Data(key, partner_id, [c for _, c in orgs], [i for i, _ in orgs])
        cur = conn.execute(
            "SELECT id, primary_org_id, industry, ledger_seq FROM members ORDER BY id"
        )
        for mid, org, industry, n in cur:
            assert mid == len(data.station_of) + 1, "members are not numbered 1..n"
            data.station_of.append(index[org])
            data.industry_of.append(inds[industry])
            data.entries_of.append(n)
        data.second_of = array("i", [-1]) * data.members
        cur = conn.execute(
            "SELECT mo.member_id, mo.org_id FROM member_orgs mo JOIN members m "
            "ON m.id = mo.member_id WHERE mo.org_id <> m.primary_org_id"
        )
        for mid, org in cur:
            data.second_of[mid - 1] = index[org]
        (entries,) = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
    say(f"reusing {DB_NAME}: {data.members:,} members, {entries:,} ledger entries")
    return data


# --- the rebuild --------------------------------------------------------------------------------


def raw_zadd(r, lines: int) -> dict:
    """The floor of writing boards: pipelined ZADD of ``lines`` lines (keys of 100,000 lines,
    1,000 members per ZADD, executed every 50,000), then the memory they took."""
    r.execute_command("MEMORY", "PURGE")
    before = redis_used(r)
    rng = random.Random(3)
    per_key, chunk = 100_000, 1000
    cpu0 = redis_cpu(r)
    started = time.perf_counter()
    pipe = r.pipeline(transaction=False)
    pending = done = 0
    keys = []
    while done < lines:
        key = f"bench:zadd:{{{len(keys)}}}"
        keys.append(key)
        for _ in range(0, min(per_key, lines - done), chunk):
            mapping = {
                str(rng.randrange(1, 10_000_000)): rng.randrange(1, 5000) + rng.random()
                for _ in range(chunk)
            }
            pipe.zadd(key, mapping)
            pending += chunk
            done += chunk
            if pending >= 50_000:
                pipe.execute()
                pending = 0
    pipe.execute()
    seconds = time.perf_counter() - started
    cpu = redis_cpu(r) - cpu0
    stored = sum(r.zcard(k) for k in keys)
    used = redis_used(r) - before
    r.delete(*keys)
    return {
        "lines": stored,
        "seconds": seconds,
        "rate": stored / seconds,
        "bytes_per_line": used / stored,
        "redis_us_per_line": cpu / stored * 1e6,
    }


def scope_level(scope: str) -> str:
    if scope.startswith("partner:"):
        return "partner"
    if scope == "ind" or scope.startswith("ind."):
        return "industry"
    return ["province", "city", "district", "street", "station"][min(scope.count("."), 4)]


def board_census(r) -> dict:
    """Boards in Redis by kind, their lines (by period, scope level, category), sizes and
    encodings, and the sum of MEMORY USAGE."""
    from app.services.boards.keys import split_key

    keys = [k.decode() for k in r.scan_iter(match="lb*:{*", count=5000)]
    out = {
        "lb": [0, 0],
        "lbo": [0, 0],
        "listpack": 0,
        "skiplist": 0,
        "largest": (0, ""),
        "memory_usage": 0,
        "period": Counter(),
        "level": Counter(),
        "category": Counter(),
        "level_memory": Counter(),
    }
    for i in range(0, len(keys), 1000):
        part = keys[i : i + 1000]
        pipe = r.pipeline(transaction=False)
        for k in part:
            pipe.zcard(k)
            pipe.object("encoding", k)
            pipe.memory_usage(k)
        replies = pipe.execute()
        for j, k in enumerate(part):
            size, encoding, usage = replies[3 * j : 3 * j + 3]
            kind, scope, period, category = split_key(k)
            out[kind][0] += 1
            out[kind][1] += size
            enc = encoding.decode() if isinstance(encoding, bytes) else encoding
            out["listpack" if enc in ("listpack", "ziplist") else "skiplist"] += 1
            out["largest"] = max(out["largest"], (size, k))
            out["memory_usage"] += usage or 0
            if kind == "lb":
                out["period"][period] += size
                out["level"][scope_level(scope)] += size
                out["level_memory"][scope_level(scope)] += usage or 0
                out["category"][category] += size
    return out


def shares(counter: Counter, total: int) -> str:
    return ", ".join(f"{k} {v / max(total, 1) * 100:.0f}%" for k, v in counter.most_common())


class PySpy:
    """py-spy sampling this process (wall clock: idle samples included) while it runs."""

    def __init__(self, path: Path, rate: int = 50):
        self.path = path
        cmd = [
            str(BIN / "py-spy"),
            "record",
            "--pid",
            str(os.getpid()),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--idle",
            "--threads",
            "--nonblocking",
            "-o",
            str(path),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # let it attach

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT, 60)  # SIGINT: py-spy writes its file

    def report(self, top: int = 18) -> None:
        """Inclusive and self shares of the main thread's functions."""
        if not self.path.exists():
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            say(f"  (py-spy wrote nothing: {err.strip()[:300]})")
            return
        inclusive: Counter = Counter()
        leaf: Counter = Counter()
        total = 0
        for line in self.path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or "MainThread" not in stack.split(";", 1)[0]:
                continue
            n = int(count)
            frames = [f.strip() for f in stack.split(";")[1:]]
            if not frames:
                continue
            total += n
            for f in set(frames):
                inclusive[_frame(f)] += n
            leaf[_frame(frames[-1])] += n
        if not total:
            say("  (py-spy: no samples of the main thread)")
            return
        say(f"  py-spy, {total:,} samples of the main thread (wall clock, waiting included):")
        say("    inclusive share (the function and what it calls):")
        wanted = (
            "_read",
            "_boards",
            "_write",
            "board_keys",
            "_swap",
            "scopes_of",
            "sibling_pairs",
            "board_key",
            "children_key",
            "parse",
            "execute",
            "__next__",
            "fetch",
            "zadd",
            "_moment",
            "tie_fraction",
            "_read_response",
            "read_response",
        )
        for name, n in inclusive.most_common():
            if any(name.startswith(w + " ") for w in wanted):
                say(f"      {n / total * 100:5.1f}%  {name}")
        say("    self share (time in the function itself, the top ones):")
        for name, n in leaf.most_common(top):
            say(f"      {n / total * 100:5.1f}%  {name}")


def _frame(text: str) -> str:
    """'func (path/to/file.py:123)' → 'func (file.py)'."""
    name, _, where = text.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    where = where.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
    return f"{name} ({where})"


def rebuild_phase(app, args, env: dict, tmp: Path) -> dict:
    import psycopg
    from sqlalchemy import event

    from app.extensions import db
    from app.redis_client import get_redis
    from app.services.boards.rebuild import rebuild_boards

    tz = app.config["APP_TIMEZONE"]
    out: dict = {}
    with app.app_context():
        r = get_redis()
        sample = min(args.raw_lines, max(args.entries * 2, 100_000))
        out["raw"] = raw_zadd(r, sample)
        say(
            f"raw pipelined ZADD: {out['raw']['lines']:,} lines in {out['raw']['seconds']:.1f} s "
            f"= {out['raw']['rate']:,.0f} lines/s; {out['raw']['bytes_per_line']:.0f} bytes per "
            f"line (keys of 100,000 lines); redis-server CPU "
            f"{out['raw']['redis_us_per_line']:.2f} µs per line"
        )

        statements = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            if "GROUP BY" in statement and "ledger_entries" in statement:
                statements.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", capture)
        marks: dict = {}

        def progress(stage: str, done: int) -> None:
            now = time.perf_counter()
            marks.setdefault(f"{stage}_first", (now, done))
            marks[f"{stage}_last"] = (now, done)

        r.execute_command("MEMORY", "PURGE")
        used_before = redis_used(r)
        rss_before = rss_now()
        reset_rss_peak()
        spy = PySpy(tmp / "rebuild.pyspy") if args.profile else None
        say("full rebuild: running ...")
        cpu0, ticks0, redis_cpu0 = os.times(), machine_ticks(), redis_cpu(r)
        started = time.perf_counter()
        try:
            report = rebuild_boards(r, tz, on_progress=progress, check_drift=False)
        finally:
            if spy:
                spy.stop()
        seconds = time.perf_counter() - started
        cpu1, ticks1, redis_cpu1 = os.times(), machine_ticks(), redis_cpu(r)
        out["cpu"] = {
            "self": cpu1.user + cpu1.system - cpu0.user - cpu0.system,
            "redis": redis_cpu1 - redis_cpu0,
            "busy": (ticks1[0] - ticks0[0]) / max(ticks1[1] - ticks0[1], 1),
        }
        event.remove(db.engine, "before_cursor_execute", capture)
        peak = rss_peak()
        used_after = redis_used(r)
        info = r.info("memory")
        out.update(
            report=report.as_dict(),
            seconds=seconds,
            redis_bytes=used_after - used_before,
            redis_peak=int(info["used_memory_peak"]),
            rss_added=peak - rss_before,
            rss_peak=peak,
            marks={k: (t - started, n) for k, (t, n) in marks.items()},
        )
        say(
            f"  done in {seconds:.1f} s: {report.boards:,} boards, {report.members:,} lines from "
            f"{report.ledger_rows:,} ledger groups; periods {', '.join(report.periods)}"
        )
        say(
            f"  CPU during the rebuild: this process {out['cpu']['self']:.1f} s, redis-server "
            f"{out['cpu']['redis']:.1f} s ({out['cpu']['redis'] / max(report.members, 1) * 1e6:.2f}"
            f" µs per line); both cores {out['cpu']['busy'] * 100:.0f}% busy (everything on the "
            "machine)"
        )
        stages = "; ".join(f"{k} at {t:.1f} s ({n:,})" for k, (t, n) in out["marks"].items())
        say(f"  progress callbacks: {stages}")
        say(
            f"  Redis used_memory +{out['redis_bytes'] / GIB:.2f} GiB "
            f"({out['redis_bytes'] / max(report.members, 1):.0f} bytes per line); this process "
            f"peak RSS {peak / GIB:.2f} GiB (+{out['rss_added'] / GIB:.2f} GiB over before, "
            f"{out['rss_added'] / max(report.members, 1):.0f} bytes per line)"
        )
        census = board_census(r)
        out["census"] = census
        say(
            f"  boards: {census['lb'][0]:,} member boards ({census['lb'][1]:,} lines), "
            f"{census['lbo'][0]:,} boards of children ({census['lbo'][1]:,} lines); "
            f"{census['listpack']:,} listpack / {census['skiplist']:,} skiplist encoded; largest "
            f"{census['largest'][1]} ({census['largest'][0]:,} lines); sum of MEMORY USAGE "
            f"{census['memory_usage'] / GIB:.2f} GiB"
        )
        lines = census["lb"][1]
        say(
            f"  member-board lines: {lines / max(data_members(app), 1):.1f} per member; by "
            f"period: {shares(census['period'], lines)}; by scope: {shares(census['level'], lines)}"
            f"; by category: {shares(census['category'], lines)}; MEMORY USAGE by scope: "
            + ", ".join(f"{k} {v / GIB:.2f} GiB" for k, v in census["level_memory"].most_common())
        )
        if spy:
            spy.report()

        if statements:
            statement, params = statements[0]
            say("  the rebuild's SQL statement alone (server-side cursor, rows dropped) ...")
            with psycopg.connect(env["DATABASE_URL"]) as conn:
                t0 = time.perf_counter()
                rows = 0
                with conn.cursor(name="bench_rebuild") as cur:
                    cur.itersize = 10_000
                    cur.execute(statement, params)
                    first = None
                    for _ in cur:
                        if first is None:
                            first = time.perf_counter() - t0
                        rows += 1
                out["sql_seconds"] = time.perf_counter() - t0
                out["sql_first_row"] = first or 0.0
                say(
                    f"  SQL alone: {rows:,} rows in {out['sql_seconds']:.1f} s (first row after "
                    f"{out['sql_first_row']:.1f} s)"
                )
                if args.profile:
                    plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)
                    say("  EXPLAIN ANALYZE of it:")
                    for (line,) in plan:
                        say(f"    {line}")
    return out


# --- live updates -------------------------------------------------------------------------------


def live_phase(app, data: Data, n: int, rng: random.Random) -> dict:
    import datetime as dt

    from app.models.base import utcnow
    from app.redis_client import get_redis
    from app.services.boards import BoardEntry, live_boards
    from app.services.boards.keys import OpenPeriods
    from app.services.boards.live import increments

    tz = app.config["APP_TIMEZONE"]
    seq = itertools.count(10_000_000)

    def award() -> BoardEntry:
        m = rng.randrange(data.members)
        s = data.second_of[m] if data.second_of[m] >= 0 and rng.random() < 0.3 else None
        now = utcnow()
        category, *_ = AWARDS[rng.choice([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])]
        return BoardEntry(
            member_id=m + 1,
            seq=next(seq),
            points=rng.randint(1, 20),
            kind="award",
            org_code=data.stations[data.station_of[m] if s is None else s],
            category=category,
            partner_code=PARTNER,
            industry=data.industry(m),
            occurred_at=now - dt.timedelta(seconds=rng.randint(5, 60)),
            created_at=now,
        )

    out: dict = {}
    with app.app_context():
        r = get_redis()
        boards = live_boards()
        for label, size, calls in (("single", 1, n), ("group", GROUP, max(n // GROUP, 8))):
            groups = [[award() for _ in range(size)] for _ in range(calls + 5)]
            for g in groups[:5]:  # warm-up: the script loaded, connections open
                boards.apply(increments(g, OpenPeriods.at(utcnow(), tz), tz))
            keys, lat, pairs = [], [], []
            stats0 = command_usec(r)
            for g in groups[5:]:
                t0 = time.perf_counter()
                inc = increments(g, OpenPeriods.at(utcnow(), tz), tz)
                ok = boards.apply(inc)
                lat.append(time.perf_counter() - t0)
                assert ok, "LiveBoards.apply failed"
                expanded = inc.members, inc.children
                keys.append(len(expanded[0]) + len(expanded[1]))
                pairs.append(
                    [(k, m, v[0]) for (k, m), v in expanded[0].items()]
                    + [(k, c, v) for (k, c), v in expanded[1].items()]
                )
            stats1 = command_usec(r)
            # the Python part alone (increments and the script's arguments), not applied
            # (after the calls: the caches of places are warm, as in a running server)
            py = []
            for g in groups[5:]:
                t0 = time.perf_counter()
                increments(g, OpenPeriods.at(utcnow(), tz), tz).script_args()
                py.append(time.perf_counter() - t0)
            inside = (stats1["evalsha"] - stats0["evalsha"]) / calls
            # the same (board, member) pairs as plain ZINCRBY in one pipeline per call
            raw = []
            for p in pairs:
                t0 = time.perf_counter()
                pipe = r.pipeline(transaction=False)
                for k, m, v in p:
                    pipe.zincrby(k, v, m)
                pipe.execute()
                raw.append(time.perf_counter() - t0)
            out[label] = {
                "size": size,
                "calls": calls,
                "keys": sum(keys) / len(keys),
                "call": lat,
                "py": py,
                "raw_pipeline": raw,
                "inside": inside,
                "raw_inside": (command_usec(r)["zincrby"] - stats1["zincrby"]) / calls,
            }
        # one ZINCRBY round trip on the biggest board
        key = "lb:{sx|all|total}"
        rtt = []
        for _ in range(n):
            m = str(rng.randrange(1, data.members + 1))
            t0 = time.perf_counter()
            r.zincrby(key, 0, m)
            rtt.append(time.perf_counter() - t0)
        out["zincrby"] = rtt
    for label in ("single", "group"):
        x = out[label]
        mean = sum(x["call"]) / len(x["call"])
        say(
            f"live update, {x['size']} award(s) per call: {x['calls']:,} calls, "
            f"{x['keys']:.0f} (board, member) pairs per call; per call mean {mean * 1e6:,.0f} µs "
            f"(p50 {pct(x['call'], 0.5):.2f} ms, p99 {pct(x['call'], 0.99):.2f} ms), of which "
            f"Python (increments + script arguments) {sum(x['py']) / len(x['py']) * 1e6:,.0f} µs; "
            f"Redis busy in the script {x['inside']:,.0f} µs (INFO commandstats); "
            f"{mean / x['size'] * 1e6:,.0f} µs per award; the same pairs as a ZINCRBY pipeline "
            f"{sum(x['raw_pipeline']) / len(x['raw_pipeline']) * 1e6:,.0f} µs per call "
            f"(Redis busy {x['raw_inside']:,.0f} µs)"
        )
    say(
        f"raw ZINCRBY round trip: mean {sum(rtt) / len(rtt) * 1e6:,.0f} µs, p50 "
        f"{pct(rtt, 0.5):.3f} ms, p99 {pct(rtt, 0.99):.3f} ms"
    )
    return out


# --- reads --------------------------------------------------------------------------------------


@dataclass
class Reads:
    name: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def read_paths(data: Data, periods: dict, rng: random.Random):
    """(group, API path, board key) of the top-100 reads: boards of every level."""
    from app.services.boards.keys import board_key

    cities = ["sx.ty", "sx.yc", "sx.yq"]
    out = []
    for p in ("all", "year", "month", "week"):
        out.append(("province", f"sx?period={p}", board_key("sx", periods[p], "total")))
    out.append(("province", "sx?period=all&category=pioneer", board_key("sx", "all", "pioneer")))
    for c in cities:
        for p in ("all", "month"):
            out.append(("city", f"{c}?period={p}", board_key(c, periods[p], "total")))
    for s in rng.sample(data.stations, 4):
        for p in ("all", "month"):
            out.append(("station", f"{s}?period={p}", board_key(s, periods[p], "total")))
    out.append(
        (
            "industry",
            "ind.delivery?period=year",
            board_key("ind.delivery", periods["year"], "total"),
        )
    )
    out.append(("industry", "ind?period=all", board_key("ind", "all", "total")))
    out.append(("partner", "partner?period=all", board_key(f"partner:{PARTNER}", "all", "total")))
    return [(g, f"/api/v1/leaderboards/{p}&limit=100", k) for g, p, k in out]


def member_boards(data: Data, m: int, periods: dict) -> list[str]:
    """The boards a default ranks request reads for member index ``m``, as the API works them
    out (its organisations and ancestors, its industry, the partner; 4 periods, 5 categories)."""
    from app.services.boards.keys import CATEGORIES, ancestors, board_key

    orgs = {data.stations[data.station_of[m]]}
    if data.second_of[m] >= 0:
        orgs.add(data.stations[data.second_of[m]])
    scopes = []
    for code in sorted(orgs):
        scopes += ancestors(code)
    scopes += ["ind", f"ind.{data.industry(m)}", f"partner:{PARTNER}"]
    scopes = list(dict.fromkeys(scopes))
    chosen = [periods[p] for p in ("week", "month", "year", "all")]
    return [board_key(s, p, c) for s in scopes for p in chosen for c in CATEGORIES]


def get_phase(
    phase: Reads, port: int, key: str, jobs: list[tuple[str, str]], seconds: float, check
) -> Reads:
    """GET ``jobs`` (group, path) from ``phase.clients`` threads until done or ``seconds``."""
    next_index = itertools.count().__next__
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        client = Client(port, key)
        mine: list[float] = []
        errors, first = 0, ""
        try:
            while time.monotonic() < deadline:
                i = next_index()
                if i >= len(jobs):
                    break
                _, path = jobs[i]
                t0 = time.perf_counter()
                try:
                    status, body = client.send("GET", path, None)
                except (OSError, http.client.HTTPException) as exc:
                    status, body = 599, str(exc).encode()
                mine.append(time.perf_counter() - t0)
                ok = False
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    ok = status == 200 and check(json.loads(body))
                if not ok:
                    errors += 1
                    first = first or f"{path}: {status} {body[:200]!r}"
        finally:
            client.close()
        with lock:
            phase.latencies.extend(mine)
            phase.errors += errors
            phase.first_error = phase.first_error or first

    phase.seconds, _ = run_threads(worker, phase.clients)
    return phase


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t0)
    return out


def top_ok(doc) -> bool:
    return len(doc["items"]) == min(100, doc["total"]) and doc["total"] > 0


def ranks_ok(doc) -> bool:
    return len(doc["boards"]) > 0


def read_phase(app, args, env: dict, data: Data, tmp: Path, rng: random.Random) -> dict:
    from app.models.base import utcnow
    from app.redis_client import get_redis
    from app.services.boards.keys import OpenPeriods, PeriodKind
    from app.services.boards.read import PAGE_SCRIPT, RANKS_SCRIPT

    tz = app.config["APP_TIMEZONE"]
    open_ = OpenPeriods.at(utcnow(), tz)
    periods = {k.value: open_.current[k] for k in PeriodKind}
    boards = read_paths(data, periods, rng)
    with app.app_context():  # members with a line on the province's all-time board
        candidates = rng.sample(range(data.members), min(data.members, 20_000))
        pipe = get_redis().pipeline(transaction=False)
        for m in candidates:
            pipe.zscore("lb:{sx|all|total}", str(m + 1))
        active = [
            m for m, score in zip(candidates, pipe.execute(), strict=True) if score is not None
        ]
    n = args.requests

    def top_jobs(count):
        return [(g, p) for g, p, _ in (boards[rng.randrange(len(boards))] for _ in range(count))]

    def rank_jobs(count, query=""):
        return [
            ("member", f"/api/v1/members/m{rng.choice(active) + 1:07d}/ranks{query}")
            for _ in range(count)
        ]

    out: dict = {"phases": []}
    server = Gunicorn(
        "app:create_app()",
        args.port,
        SimpleNamespace(workers=2, worker_class="gthread", threads=4),
        env,
        tmp / "app.log",
    )
    try:
        server.wait_ready()
        warm = Reads("warm-up", 4)
        get_phase(warm, args.port, data.key, top_jobs(200) + rank_jobs(100), 60, lambda d: True)
        plan = [
            (Reads("top-100, 1 client", 1), top_jobs(n), top_ok),
            (Reads(f"top-100, {args.clients} clients", args.clients), top_jobs(n * 2), top_ok),
            (Reads("member ranks, 1 client", 1), rank_jobs(n), ranks_ok),
            (
                Reads(f"member ranks, {args.clients} clients", args.clients),
                rank_jobs(n * 2),
                ranks_ok,
            ),
            (
                Reads("ranks ?period=all&category=total, 1 client", 1),
                rank_jobs(max(n // 2, 50), "?period=all&category=total"),
                ranks_ok,
            ),
        ]
        for phase, jobs, check in plan:
            get_phase(phase, args.port, data.key, jobs, args.seconds, check)
            out["phases"].append(phase)
            say(
                f"  {phase.name}: {len(phase.latencies):,} requests, {phase.rate:,.0f}/s, "
                f"p50 {pct(phase.latencies, 0.5):.2f} ms, p99 {pct(phase.latencies, 0.99):.2f} ms"
                f", errors {phase.errors}" + (f" ({phase.first_error})" if phase.errors else "")
            )
    finally:
        server.stop()
        out["log"] = server.tail()

    # the raw Redis commands and the app's own scripts, same boards, one connection
    with app.app_context():
        r = get_redis()
        page = r.register_script(PAGE_SCRIPT)
        ranks = r.register_script(RANKS_SCRIPT)
        keys = [boards[rng.randrange(len(boards))][2] for _ in range(n)]
        members = [rng.choice(active) for _ in range(n)]
        member_keys = [(m, member_boards(data, m, periods)) for m in members]
        timed(lambda k: r.zrevrange(k, 0, 99, withscores=True), keys[:100])  # warm-up
        raw = {
            "ZREVRANGE 0 99 WITHSCORES": timed(
                lambda k: r.zrevrange(k, 0, 99, withscores=True), keys
            ),
            "app page script (EVALSHA)": timed(lambda k: page(keys=[k], args=[0, 100]), keys),
            "ZREVRANK (province, all time)": timed(
                lambda m: r.zrevrank("lb:{sx|all|total}", str(m + 1)), members
            ),
            "ZREVRANK ×boards of the member, pipelined": timed(
                lambda mk: _pipelined_ranks(r, mk), member_keys
            ),
            "app ranks script (EVALSHA)": timed(
                lambda mk: ranks(keys=mk[1], args=[str(mk[0] + 1)]), member_keys
            ),
        }
        out["boards_per_ranks"] = sum(len(k) for _, k in member_keys) / len(member_keys)
    out["raw"] = raw
    for name, lat in raw.items():
        say(f"  raw: {name}: p50 {pct(lat, 0.5):.3f} ms, p99 {pct(lat, 0.99):.3f} ms")
    if args.profile:
        profile_reads(app, data.key, top_jobs(300), rank_jobs(100))
    return out


def _pipelined_ranks(r, member_keys) -> None:
    m, keys = member_keys
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.zrevrank(k, str(m + 1))
    pipe.execute()


def profile_reads(app, key: str, top: list, ranks: list) -> None:
    """In this process (Flask test client): time and profile read requests, count their SQL."""
    import psycopg

    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    statements: Counter = Counter()
    execute = psycopg.Cursor.execute

    def count(cursor, query, params=None, **kwargs):
        text = query if isinstance(query, str) else str(query)
        statements[" ".join(text.split()[:6])[:70]] += 1
        return execute(cursor, query, params, **kwargs)

    for label, jobs in (("top-100", top), ("member ranks", ranks)):
        for _, path in jobs[:20]:
            assert client.get(path, headers=headers).status_code == 200
        psycopg.Cursor.execute = count
        statements.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        for _, path in jobs[20:]:
            client.get(path, headers=headers)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        psycopg.Cursor.execute = execute
        k = len(jobs) - 20
        say(
            f"\nin-process {label} (test client, no profiler): {wall / k * 1e3:.2f} ms wall, "
            f"{cpu / k * 1e3:.2f} ms CPU per request; SQL statements per request "
            f"{sum(statements.values()) / k:.1f}:"
        )
        for text, n in statements.most_common(5):
            say(f"    {n / k:6.1f}  {text}")
        prof = cProfile.Profile()
        prof.enable()
        for _, path in jobs[20:]:
            client.get(path, headers=headers)
        prof.disable()
        stats = pstats.Stats(prof)
        total = sum(v[2] for v in stats.stats.values())
        say("  under cProfile, cumulative share of the whole (selected):")
        wanted = (
            "member_ranks",
            "page",
            "names",
            "is_closed",
            "get_ranks",
            "get_board",
            "find_member",
            "require_partner",
            "__call__",
            "scalars",
            "execute",
            "wait",
            "member_codes",
            "dumps",
        )
        rows = []
        for (path, line, name), (_, calls, _, cum, _) in stats.stats.items():
            if name in wanted and ("app/" in path or name in ("wait", "__call__")):
                where = path.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
                rows.append((cum, calls, f"{name} ({where}:{line})"))
        for cum, calls, where in sorted(rows, reverse=True)[:14]:
            say(f"    {cum / total * 100:5.1f}%  {calls / k:8.1f} calls/request  {where}")
        say("  most time inside one function (tottime):")
        for (path, line, name), (_, calls, tot, _, _) in sorted(
            stats.stats.items(), key=lambda kv: -kv[1][2]
        )[:8]:
            where = path.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            say(
                f"    {tot / total * 100:5.1f}%  {calls / k:8.1f} calls/request  {name} "
                f"({where}:{line})"
            )


# --- the run ------------------------------------------------------------------------------------


def summary(args, data: Data, rebuild: dict, live: dict, reads: dict, load_s: float) -> None:
    rep = rebuild["report"]
    lines = max(rep["members"], 1)
    raw = rebuild["raw"]
    floor_write = rep["members"] / raw["rate"]
    phases = {p.name: p for p in reads["phases"]}
    ph = list(phases.values())
    top1, topn, rank1, rankn, narrow = ph
    rr = reads["raw"]

    def lat(x: list[float]) -> str:
        return f"{pct(x, 0.5):.2f} / {pct(x, 0.99):.2f}"

    def ratio(a: float, b: float) -> str:
        return f"{a / b:,.1f}×" if b else "–"

    s1, sg = live["single"], live["group"]
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    rows = [
        (
            "live update, 1 award per call",
            f"{mean(s1['call']) * 1e6:,.0f} µs/award",
            f"ZINCRBY round trip {mean(live['zincrby']) * 1e6:,.0f} µs; same "
            f"{s1['keys']:.0f} pairs pipelined {mean(s1['raw_pipeline']) * 1e6:,.0f} µs",
            ratio(mean(s1["call"]), mean(s1["raw_pipeline"])),
        ),
        (
            f"live update, {GROUP} awards per call",
            f"{mean(sg['call']) / GROUP * 1e6:,.0f} µs/award "
            f"({mean(sg['call']) * 1e3:.1f} ms/call)",
            f"same pairs pipelined {mean(sg['raw_pipeline']) / GROUP * 1e6:,.0f} µs/award",
            ratio(mean(sg["call"]), mean(sg["raw_pipeline"])),
        ),
        (
            "top-100 via API p50/p99 ms, 1 client",
            lat(top1.latencies),
            f"ZREVRANGE 0 99 WITHSCORES {lat(rr['ZREVRANGE 0 99 WITHSCORES'])}",
            ratio(pct(top1.latencies, 0.99), pct(rr["ZREVRANGE 0 99 WITHSCORES"], 0.99)),
        ),
        (
            f"top-100 via API p50/p99 ms, {args.clients} cl.",
            lat(topn.latencies),
            f"app page script {lat(rr['app page script (EVALSHA)'])}",
            ratio(pct(topn.latencies, 0.99), pct(rr["ZREVRANGE 0 99 WITHSCORES"], 0.99)),
        ),
        (
            "member ranks via API p50/p99 ms, 1 cl.",
            lat(rank1.latencies),
            f"ZREVRANK {lat(rr['ZREVRANK (province, all time)'])}; "
            f"{reads['boards_per_ranks']:.0f} boards: pipelined "
            f"{lat(rr['ZREVRANK ×boards of the member, pipelined'])}, app script "
            f"{lat(rr['app ranks script (EVALSHA)'])}",
            ratio(pct(rank1.latencies, 0.99), pct(rr["ZREVRANK (province, all time)"], 0.99)),
        ),
        (
            f"member ranks via API p50/p99 ms, {args.clients} cl.",
            lat(rankn.latencies),
            "",
            ratio(pct(rankn.latencies, 0.99), pct(rr["ZREVRANK (province, all time)"], 0.99)),
        ),
        ("ranks, 1 board set (all, total), 1 cl.", lat(narrow.latencies), "", ""),
        (
            "full rebuild",
            f"{rebuild['seconds']:,.1f} s, {rep['members'] / rebuild['seconds']:,.0f} lines/s",
            f"ZADD {raw['rate']:,.0f} lines/s → {floor_write:,.1f} s for the lines; SQL alone "
            f"{rebuild.get('sql_seconds', float('nan')):,.1f} s",
            ratio(rebuild["seconds"], floor_write + rebuild.get("sql_seconds", 0)),
        ),
        (
            "Redis memory of the boards",
            f"{rebuild['redis_bytes'] / GIB:,.2f} GiB, "
            f"{rebuild['redis_bytes'] / lines:,.0f} B/line",
            f"raw zset {raw['bytes_per_line']:,.0f} B/line × {rep['members']:,} lines = "
            f"{raw['bytes_per_line'] * rep['members'] / GIB:,.2f} GiB",
            ratio(rebuild["redis_bytes"], raw["bytes_per_line"] * rep["members"]),
        ),
        (
            "rebuild: redis-server CPU",
            f"{rebuild['cpu']['redis']:,.1f} s, "
            f"{rebuild['cpu']['redis'] / lines * 1e6:.2f} µs/line",
            f"raw ZADD {raw['redis_us_per_line']:.2f} µs/line → "
            f"{raw['redis_us_per_line'] * rep['members'] / 1e6:,.1f} s for the lines",
            ratio(rebuild["cpu"]["redis"], raw["redis_us_per_line"] * rep["members"] / 1e6),
        ),
        (
            "rebuild: Python peak RSS added",
            f"{rebuild['rss_added'] / GIB:,.2f} GiB, {rebuild['rss_added'] / lines:,.0f} B/line",
            "",
            "",
        ),
    ]
    say("")
    say(
        f"{data.members:,} members, {args.entries:,} ledger entries, {len(data.stations):,} "
        f"stations; {rep['boards']:,} boards, {rep['members']:,} lines; load {load_s:,.0f} s"
    )
    say(f"{'figure':<42} {'measured':<34} {'÷raw':>7}  raw Redis / floor, same run")
    for name, value, floor, r in rows:
        say(f"{name:<42} {value:<34} {r:>7}  {floor}")
    say("")
    targets = [
        (
            f"top-100 p99 {pct(top1.latencies, 0.99):.2f} ms (1 client), "
            f"{pct(topn.latencies, 0.99):.2f} ms ({args.clients} clients) (target < 10 ms)",
            pct(topn.latencies, 0.99) < 10 and pct(top1.latencies, 0.99) < 10,
        ),
        (
            f"member-rank p99 {pct(rank1.latencies, 0.99):.2f} ms (1 client), "
            f"{pct(rankn.latencies, 0.99):.2f} ms ({args.clients} clients) (target < 10 ms)",
            pct(rankn.latencies, 0.99) < 10 and pct(rank1.latencies, 0.99) < 10,
        ),
        (f"full rebuild {rebuild['seconds']:,.1f} s (target < 120 s)", rebuild["seconds"] < 120),
        (
            f"Redis memory {rebuild['redis_bytes'] / GIB:,.2f} GiB (target < 2 GiB)",
            rebuild["redis_bytes"] < 2 * GIB,
        ),
    ]
    scale = ""
    if data.members < 1_000_000 or args.entries < 10_000_000:
        scale = f"   [at {data.members:,} members / {args.entries:,} entries, not the full size]"
    for text, ok in targets:
        say(f"target  {'met    ' if ok else 'NOT MET'} {text}{scale}")
    if scale:
        k = max(1_000_000 / data.members, 10_000_000 / max(args.entries, 1))
        say(
            f"extrapolated ×{k:.1f} to 1,000,000 members / 10,000,000 entries (linear in members "
            "and entries; NOT measured): "
            f"{rep['members'] * k / 1e6:,.0f}M lines, rebuild ≈ {rebuild['seconds'] * k:,.0f} s "
            f"(raw floor ≈ {(floor_write + rebuild.get('sql_seconds', 0)) * k:,.0f} s), Redis ≈ "
            f"{rebuild['redis_bytes'] * k / GIB:,.1f} GiB, rebuild's Python peak ≈ "
            f"{rebuild['rss_added'] * k / GIB:,.1f} GiB (both held at once at the end of the "
            "write); read latencies grow with log(board size) only"
        )
    errors = sum(p.errors for p in ph)
    say(f"check   {'ok     ' if not errors else 'FAILED '} read errors: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--stations", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="50,000 members, 500,000 entries")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and Redis DB 10 at the end"
    )
    parser.add_argument("--reuse", action="store_true", help="use the database kept by --keep")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the rebuild, EXPLAIN its SQL, cProfile reads in process",
    )
    parser.add_argument("--live", type=int, default=2000, help="live-update calls per case")
    parser.add_argument("--requests", type=int, default=2000, help="per read phase (×2 for 4 cl.)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60, help="time limit of a read phase")
    parser.add_argument("--raw-lines", type=int, default=3_000_000, help="raw ZADD sample")
    parser.add_argument("--min-free-gib", type=float, default=1.5)
    parser.add_argument("--port", type=int, default=8775)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/10")
    args = parser.parse_args()
    if args.quick:
        args.members, args.entries, args.requests, args.live = 50_000, 500_000, 500, 500
        args.raw_lines = 500_000

    import psycopg
    import redis

    rng = random.Random(4)
    env = {
        **os.environ,
        "DATABASE_URL": f"{args.postgres}/{DB_NAME}",
        "REDIS_URL": args.redis,
        "RULES_DIR": str(ROOT / "rules"),
        "SECRET_KEY": "bench-boards",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "RULES_DIR", "SECRET_KEY")})
    say(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"{mem_available() / GIB:.1f} GiB available; PostgreSQL database {DB_NAME}; "
        f"{args.redis}; gunicorn -w 2 -k gthread --threads 4"
    )
    say(code_version())
    busy = background_busy()
    say(
        f"machine busy before the run: {busy * 100:.0f}% of the cores"
        + (" (other work is running: expect lower figures)" if busy > 0.1 else "")
    )
    admin = psycopg.connect(f"{args.postgres}/postgres", autocommit=True)
    r = redis.Redis.from_url(args.redis)
    r.flushdb()
    drop = not args.keep
    try:
        with (
            Watchdog(int(args.min_free_gib * GIB)) as dog,
            tempfile.TemporaryDirectory(prefix="bench_boards_") as tmp_name,
        ):
            tmp = Path(tmp_name)
            started = time.perf_counter()
            if args.reuse:
                drop = False  # a kept database stays
                data = reuse(env)
                args.members = data.members
                args.entries = sum(data.entries_of)
            else:
                data = load(args, env, admin, rng)
            load_s = time.perf_counter() - started
            say(f"data ready in {load_s:.0f} s")

            from app import create_app

            app = create_app()
            rebuild = rebuild_phase(app, args, env, tmp)
            live = live_phase(app, data, args.live, rng)
            say("reads through the API (gunicorn) and raw:")
            reads = read_phase(app, args, env, data, tmp, rng)
            summary(args, data, rebuild, live, reads, load_s)
            say(f"lowest memory available during the run: {dog.lowest / GIB:.1f} GiB")
            if any(p.errors for p in reads["phases"]):
                say(f"gunicorn log tail:\n{reads['log']}")
                sys.exit(1)
    finally:
        if not args.keep:
            with contextlib.suppress(Exception):
                r.flushdb()
        r.close()
        if drop:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
