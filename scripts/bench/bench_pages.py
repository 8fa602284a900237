"""Benchmark the rider pages (``/m``) at scale: server time per page, in process and over HTTP,
and the size of each page.

    .venv/bin/python scripts/bench/bench_pages.py [--quick] [--members 1000000]
        [--entries 10000000] [--sample 200] [--boards auto|rebuild|pages] [--keep] [--reuse]

1. Data: bench_leaderboards' generator (``load``), into a database of its own,
   ``pp_bench_pages`` (dropped at the end, also on error, unless ``--keep``; ``--reuse`` runs
   again on a kept one): a province of 11 cities and ~2,000 stations, the members, and a ledger
   of ``--entries`` lines over ~14 months, loaded with COPY. Redis: database 3, flushed at the
   start and at the end (kept with ``--keep``).
2. The sample: ``--sample`` members, nine in ten drawn at random from all members and one in ten
   from the 1,000 with the longest ledgers. For them only, in this process and through the
   app's own code: events posted to the batch API (Flask test client, partner key; bench_ingest's
   ``Events``: duty shifts, volunteer hours, hazard reports, patrols over the last four weeks,
   which the rules award, leave pending or match nothing); then, by SQL updates standing in
   for the console that decides pending events (issue #7, not built), half the pending
   volunteer events marked awarded (events only: the certificate reads them; no ledger line is
   added) and a third of the other pending ones rejected with a reason;
   redemptions of the rewards of the member's city (rows inserted directly: pending, picked
   up, cancelled, expired), and appeals raised with ``services.appeals.raise_appeal`` (about a
   ledger line, about an event, about a missing activity), half of them then answered (SQL
   update). Then ANALYZE. The sample is kept in ``bench_meta`` for ``--reuse``.
3. Leaderboards (Redis): ``--boards rebuild`` runs the real full rebuild
   (``rebuild_boards``, as ``flask boards rebuild --no-drift``), timed; ``--boards pages``
   fills only the boards the measured pages read, for every member: scopes of station, street
   and city level and the industry committees, this and last week and month, categories total
   and pioneer. It uses the rebuild's own ``_read`` (restricted to those four periods),
   ``_boards`` and ``_write`` (straight into the keys), so lines and scores are the rebuild's.
   ``auto``: the rebuild up to 200,000 members, the pages' boards above (at 1M members /
   10M entries the rebuild took 605 s and 9.6 GiB of Redis here, the pages' boards 146 s and
   1.0 GiB; the pages measured the same with either: docs/benchmarks.md).
4. Sign-in: the server (``app:create_app()`` under gunicorn ``-w 2 -k gthread --threads 4``,
   as the other benches) is asked for a login link per sampled member
   (``POST /api/v1/members/<ref>/login-link``, partner key) and the link is opened; the
   session cookie it sets is kept.
5. Server time, in process: ``create_app()`` in this process, ``app.test_client()``, one
   thread; every page of every sampled member (``--passes`` times, in a shuffled order, after
   a warm-up), timed around each request, with the SQL statements and their time (SQLAlchemy
   cursor events) and the Redis calls and their time of each request. This is the time the
   app spends on a request: what the target (p95 < 50 ms per page, issue #6) is judged on.
6. Over HTTP: the same requests to gunicorn from 1 and from ``--clients`` keep-alive clients
   (threads of this process, on the same two cores as the server, PostgreSQL and Redis).
7. The slowest page (p95 in process): its statements with their times as measured, and
   EXPLAIN (ANALYZE, BUFFERS) of the one with the highest p95 as the app runs it (a generic
   plan: the app's connections use ``plan_cache_mode=force_generic_plan``).

Pages are requested in Chinese (``Accept-Language: zh-CN``) except "history (English)", which
renders the rules' explanations in English. Sizes are of the HTML; the stylesheet is added once
for the 100 KB check (the QR image of a redemption is excluded, as the issue says).
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
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_leaderboards as boards_bench
from bench_ingest import (
    CLK_TCK,
    ROOT,
    Client,
    Events,
    Gunicorn,
    background_busy,
    cpu_seconds,
    machine_ticks,
    run_threads,
)
from bench_leaderboards import (
    GIB,
    PARTNER,
    Data,
    Watchdog,
    code_version,
    load,
    mem_available,
    pct,
    redis_cpu,
    redis_used,
    reuse,
    say,
)

DB_NAME = "pp_bench_pages"
boards_bench.DB_NAME = DB_NAME  # load() and reuse() name their database by this global
COOKIE = "pp_session"  # SESSION_COOKIE_NAME
TARGET_MS = 50.0  # p95 server time per page (issue #6)
SIZE_LIMIT = 100 * 1024  # bytes per page, HTML + CSS (issue #6)
CSS = ROOT / "app" / "web" / "static" / "web.css"
ZH, EN = "zh-CN,zh;q=0.9,en;q=0.5", "en-US,en;q=0.9"
HEAVY_POOL = 1000  # one in ten sampled members is among the members with the longest ledgers
REJECT_REASON = "照片不清晰，无法核实隐患位置，请补充后重新上报。"
ANSWER = "已核实：该次活动的积分已在规则范围内补记，请在明细中查看。"


@dataclass(frozen=True)
class Page:
    name: str
    path: str  # {industry} and {code} are the member's
    lang: str = ZH


PAGES = [
    Page("home", "/m/"),
    Page("history", "/m/history"),
    Page("history ?category=volunteer", "/m/history?category=volunteer"),
    Page("history (English)", "/m/history", EN),
    Page("boards", "/m/boards"),
    Page("boards ?period=month&category=pioneer", "/m/boards?period=month&category=pioneer"),
    Page("boards industry, month", "/m/boards?scope=ind.{industry}&period=month"),
    Page("badges", "/m/badges"),
    Page("rewards", "/m/rewards"),
    Page("redemptions", "/m/redemptions"),
    Page("redemption (code, QR)", "/m/redemptions/{code}"),
    Page("appeals", "/m/appeals"),
    Page("certificate", "/m/certificate"),
    Page("settings", "/m/settings"),
]


@dataclass
class Rider:
    id: int
    ref: str
    industry: str
    heavy: bool
    entries: int
    cookie: str = ""
    code: str = ""  # one of its redemptions

    def path(self, page: Page) -> str:
        return page.path.format(industry=self.industry, code=self.code)


@dataclass
class Stats:
    """One page in one phase."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    redis: list[float] = field(default_factory=list)
    redis_calls: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    def add(self, seconds: float, status: int, size: int) -> None:
        self.seconds.append(seconds)
        self.statuses[status] += 1
        self.sizes.append(size)

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s != 200)


def median(values) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


# --- the sample and its activity ----------------------------------------------------------------


def longest_ledgers(data: Data) -> list[int]:
    """Indexes of the ``HEAVY_POOL`` members with the most ledger entries."""
    return sorted(range(data.members), key=lambda m: -data.entries_of[m])[:HEAVY_POOL]


def choose_sample(data: Data, n: int, longest: list[int], rng: random.Random) -> tuple:
    """Member ids, one in ten among the longest ledgers (first) and the rest at random; and
    how many of them are the former."""
    heavy_n = max(1, n // 10)
    heavy = rng.sample(longest, min(heavy_n, len(longest)))
    taken = set(heavy)
    rest = [m for m in rng.sample(range(data.members), n * 2) if m not in taken][: n - len(heavy)]
    return [m + 1 for m in heavy + rest], len(heavy)


def member_station(data: Data, mid: int) -> str:
    return data.stations[data.station_of[mid - 1]]


def add_activity(app, data: Data, ids: list[int], args, rng: random.Random) -> None:
    """Events through the batch API, some rejected; redemptions; appeals (see the module doc)."""
    import psycopg
    from sqlalchemy import insert, select, text

    from app.errors import Conflict
    from app.extensions import db
    from app.models import Event, LedgerEntry, Member, Redemption, RedemptionStatus
    from app.models.base import utcnow
    from app.services import appeals, rewards
    from app.services.rules import current_rules

    refs = [(f"m{mid:07d}", member_station(data, mid)) for mid in ids]
    maker = Events(refs, seed=17)
    bodies = [maker.make() for _ in range(len(ids) * args.events)]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {data.key}"}
    t0 = time.perf_counter()
    statuses: Counter = Counter()
    for i in range(0, len(bodies), 500):
        resp = client.post("/api/v1/events/batch", json={"events": bodies[i : i + 500]},
                           headers=headers)  # fmt: skip
        assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
        statuses.update(r["status"] for r in resp.get_json()["results"])
    events_s = time.perf_counter() - t0
    with app.app_context():
        now = utcnow()
        confirmed = db.session.execute(
            text(
                "UPDATE events SET status = 'awarded', decided_at = :now, "
                "points = round(4 * (data->>'hours')::numeric) "
                "WHERE status = 'pending' AND type LIKE 'volunteer.%' AND id % 2 = 0"
            ),
            {"now": now},
        ).rowcount
        rejected = db.session.execute(
            text(
                "UPDATE events SET status = 'rejected', reason = :reason, decided_at = :now "
                "WHERE id IN (SELECT id FROM events WHERE status = 'pending' AND id % 3 = 0)"
            ),
            {"reason": REJECT_REASON, "now": now},
        ).rowcount
        db.session.commit()
        by_status = dict(
            db.session.execute(text("SELECT status, count(*) FROM events GROUP BY 1")).all()
        )
        say(
            f"  events: {len(bodies):,} posted to the batch API in {events_s:.1f} s "
            f"(answers {dict(statuses)}); of the pending, {confirmed:,} volunteer events marked "
            f"awarded and {rejected:,} others rejected; stored by status {by_status}"
        )

        # redemptions: of the rewards of the member's city (any reward when it has none)
        rules = current_rules()
        everything = [r for f in rules.files.values() for r in f.rewards]
        rows, codes = [], set()
        pending, cancelled = RedemptionStatus.PENDING, RedemptionStatus.CANCELLED
        kinds = [pending, *[RedemptionStatus.CONFIRMED] * 2, cancelled, RedemptionStatus.EXPIRED]
        for mid in ids:
            city = ".".join(member_station(data, mid).split(".")[:2])
            offered = rewards.catalogue(rules, city) or everything
            for j in range(args.redemptions):
                r = rng.choice(offered)
                status = pending if j == 0 else rng.choice(kinds)
                created = now - dt.timedelta(hours=1 + rng.random() * (20 if j == 0 else 2000))
                hours = r.pickup_hours or app.config["REDEMPTION_PICKUP_HOURS"]
                if status == pending:
                    decided_by = None
                elif status == cancelled:
                    decided_by = "member"
                else:
                    decided_by = f"partner:{PARTNER}"
                rows.append({
                    "code": _code(rng, codes), "member_id": mid, "reward": rewards.reward_key(r),
                    "org_code": r.org, "name": r.name, "cost": r.cost, "status": str(status),
                    "created_at": created, "expires_at": created + dt.timedelta(hours=hours),
                    "decided_at": None if status == pending else created + dt.timedelta(hours=1),
                    "decided_by": decided_by,
                    "stock_period": "ever", "limit_period": "ever", "sponsor": r.sponsor,
                    "budget_period": None, "yuan": r.yuan_per_item, "rules_version": "2026.11",
                })  # fmt: skip
        db.session.execute(insert(Redemption), rows)
        db.session.commit()
        say(f"  redemptions: {len(rows):,} rows inserted ({args.redemptions} per member)")

        # appeals: about the newest award line, about an event that earned nothing, about nothing
        raised = 0
        for mid in ids:
            member = db.session.get(Member, mid)
            entry = db.session.scalar(
                select(LedgerEntry)
                .where(LedgerEntry.member_id == mid, LedgerEntry.kind == "award")
                .order_by(LedgerEntry.seq.desc())
                .limit(1)
            )
            event = db.session.scalar(
                select(Event)
                .where(Event.member_id == mid, Event.status != "awarded")
                .order_by(Event.occurred_at.desc())
                .limit(1)
            )
            for kind, note, about in (
                ("points", "这条积分好像少算了一个小时，请帮忙核实。", {"entry": entry}),
                ("missing", "这次上报一直没有结果，麻烦看一下。", {"event": event}),
                ("missing", "上周三下午在驿站值守了两个小时，没有看到积分。", {}),
            ):
                if any(v is None for v in about.values()):
                    continue
                with contextlib.suppress(Conflict):
                    appeals.raise_appeal(member, kind, note, **about)
                    raised += 1
        db.session.commit()
        answered = db.session.execute(
            text(
                "UPDATE appeals SET status = 'answered', answer = :answer, answered_at = :now, "
                "answered_by = org_code WHERE id % 2 = 0"
            ),
            {"answer": ANSWER, "now": now},
        ).rowcount
        db.session.commit()
        say(f"  appeals: {raised:,} raised through the service, {answered:,} answered")
    with psycopg.connect(app.config["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("ANALYZE events, redemptions, appeals, members, ledger_entries")


def _code(rng: random.Random, taken: set) -> str:
    from app.services.rewards import CODE_ALPHABET, CODE_LENGTH

    while True:
        code = "".join(rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken:
            taken.add(code)
            return code


# --- leaderboards -------------------------------------------------------------------------------


PAGE_LEVELS = (1, 3, 4)  # the scope levels the pages read: city, street, station (dots)
PAGE_CATEGORIES = ("total", "pioneer")


def page_board(key: str) -> bool:
    """Whether a member board is one the measured pages read (module doc, step 3)."""
    from app.services.boards.keys import split_key

    kind, scope, _, category = split_key(key)
    if kind != "lb" or category not in PAGE_CATEGORIES:
        return False
    if scope.startswith("ind."):
        return True
    return not scope.startswith(("ind", "partner:")) and scope.count(".") in PAGE_LEVELS


def fill_page_boards(app, client) -> dict:
    """The boards the pages read, for every member, with the rebuild's own code."""
    from app.extensions import db
    from app.models.base import utcnow
    from app.services.boards.keys import OpenPeriods, PeriodKind
    from app.services.boards.rebuild import RebuildReport, _boards, _read, _write

    tz = app.config["APP_TIMEZONE"]
    full = OpenPeriods.at(utcnow(), tz)
    kinds = (PeriodKind.WEEK, PeriodKind.MONTH)
    wanted = frozenset([full.current[k] for k in kinds] + [full.previous[k] for k in kinds])
    open_ = OpenPeriods(wanted, full.current, full.previous)
    report = RebuildReport(periods=sorted(wanted))
    marks = {}

    def progress(stage: str, done: int) -> None:
        marks[stage] = (time.perf_counter() - started, done)

    started = time.perf_counter()
    with app.app_context(), db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            periods, rows = _read(conn, open_, tz, report, progress)
    read_s = time.perf_counter() - started
    computed = skipped = 0
    for i, period in enumerate(periods):
        boards = _boards(rows, i, period)
        keep = {k: v for k, v in boards.items() if page_board(k)}
        computed += sum(len(v) for v in boards.values())
        skipped += sum(len(v) for k, v in boards.items() if k not in keep)
        boards.clear()
        _write(client, keep, "", report, progress)
    seconds = time.perf_counter() - started
    return {"report": report, "seconds": seconds, "read_s": read_s, "computed": computed,
            "skipped": skipped}  # fmt: skip


def fill_boards(app, mode: str) -> dict:
    from app.redis_client import get_redis
    from app.services.boards.rebuild import rebuild_boards

    with app.app_context():
        client = get_redis()
        client.flushdb()  # what the sample's events added live: rebuilt from the ledger below
        client.execute_command("MEMORY", "PURGE")
        before = redis_used(client)
        if mode == "rebuild":
            started = time.perf_counter()
            report = rebuild_boards(client, app.config["APP_TIMEZONE"], check_drift=False)
            out = {"report": report, "seconds": time.perf_counter() - started}
        else:
            out = fill_page_boards(app, client)
        out["redis_bytes"] = redis_used(client) - before
        client.set("bench:pages:boards", mode)
    rep = out["report"]
    say(
        f"boards ({mode}): {rep.boards:,} boards, {rep.members:,} lines from {rep.ledger_rows:,} "
        f"ledger groups, periods {', '.join(rep.periods)}, in {out['seconds']:.1f} s; Redis "
        f"+{out['redis_bytes'] / GIB:.2f} GiB"
        + (
            f" (read {out['read_s']:.1f} s; of {out['computed']:,} lines computed, "
            f"{out['skipped']:,} on boards the pages do not read were not written)"
            if mode == "pages"
            else ""
        )
    )
    return out


# --- requests -----------------------------------------------------------------------------------


class PageClient(Client):
    """A keep-alive connection that sends its own headers per request and returns the
    response's headers too."""

    def fetch(self, method: str, path: str, headers: dict, body: bytes | None = None):
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body, headers)
                response = self.conn.getresponse()
                return response.status, response.read(), response.headers
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def sign_in(port: int, key: str, riders: list[Rider]) -> dict:
    """A login link per rider through the API, opened; the session cookie kept."""
    client = PageClient(port, None)
    link, opened = [], []
    for rider in riders:
        t0 = time.perf_counter()
        status, body, _ = client.fetch(
            "POST", f"/api/v1/members/{rider.ref}/login-link",
            {"Authorization": f"Bearer {key}", "Content-Length": "0"},
        )  # fmt: skip
        link.append(time.perf_counter() - t0)
        assert status == 201, (status, body[:300])
        t0 = time.perf_counter()
        status, _, headers = client.fetch("GET", urlsplit(json.loads(body)["url"]).path, {})
        opened.append(time.perf_counter() - t0)
        assert status == 302, status
        cookies = SimpleCookie()
        for value in headers.get_all("Set-Cookie") or []:
            cookies.load(value)
        rider.cookie = cookies[COOKIE].value
    client.close()
    return {"link": link, "open": opened}


def request_headers(rider: Rider, page: Page) -> dict:
    return {"Cookie": f"{COOKIE}={rider.cookie}", "Accept-Language": page.lang}


class Meter:
    """SQL statements and Redis calls of the request running in this thread, with their time."""

    def __init__(self):
        self.reset()
        self.page: str | None = None  # the page measured: its statements are collected
        # (page, statement) -> [durations, the parameters of the last run]
        self.shapes: dict[tuple[str, str], list] = {}

    def reset(self) -> None:
        self.sql = self.redis = 0.0
        self.statements = self.redis_calls = 0

    def install(self, app) -> None:
        import redis
        from sqlalchemy import event

        from app.extensions import db

        meter = self
        with app.app_context():
            engine = db.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):
            conn.info["bench_t0"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):
            took = time.perf_counter() - conn.info.pop("bench_t0")
            meter.sql += took
            meter.statements += 1
            if meter.page is not None:
                shape = meter.shapes.setdefault((meter.page, statement), [[], None])
                shape[0].append(took)
                shape[1] = parameters

        plain, piped = redis.Redis.execute_command, redis.client.Pipeline.execute

        def execute_command(client, *args, **kwargs):
            if isinstance(client, redis.client.Pipeline):
                return plain(client, *args, **kwargs)  # queued: timed in execute
            t0 = time.perf_counter()
            try:
                return plain(client, *args, **kwargs)
            finally:
                meter.redis += time.perf_counter() - t0
                meter.redis_calls += 1

        def execute(pipe, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return piped(pipe, *args, **kwargs)
            finally:
                meter.redis += time.perf_counter() - t0
                meter.redis_calls += 1

        redis.Redis.execute_command = execute_command
        redis.client.Pipeline.execute = execute


def jobs_of(riders: list[Rider], passes: int, rng: random.Random) -> list[tuple[Page, Rider]]:
    jobs = [(p, r) for _ in range(passes) for p in PAGES for r in riders]
    rng.shuffle(jobs)
    return jobs


def in_process(app, meter: Meter, riders, args, rng) -> dict[str, Stats]:
    """Every page of every rider through the Flask test client, one thread."""
    client = app.test_client(use_cookies=False)
    for page in PAGES:  # warm-up: templates compiled, statements prepared, pools filled
        for rider in riders[:8]:
            client.get(rider.path(page), headers=request_headers(rider, page))
    stats = {p.name: Stats() for p in PAGES}
    deadline = time.monotonic() + args.seconds
    for page, rider in jobs_of(riders, args.passes, rng):
        if time.monotonic() > deadline:
            break
        meter.reset()
        meter.page = page.name
        c0, t0 = time.process_time(), time.perf_counter()
        resp = client.get(rider.path(page), headers=request_headers(rider, page))
        body = resp.get_data()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        s = stats[page.name]
        s.add(wall, resp.status_code, len(body))
        s.cpu.append(cpu)
        s.sql.append(meter.sql)
        s.statements.append(meter.statements)
        s.redis.append(meter.redis)
        s.redis_calls.append(meter.redis_calls)
    meter.page = None
    return stats


def over_http(port: int, riders, clients: int, args, rng) -> tuple[dict[str, Stats], float]:
    """The same requests to the server from ``clients`` keep-alive connections."""
    jobs = jobs_of(riders, 1, rng)
    stats = {p.name: Stats() for p in PAGES}
    lock = threading.Lock()
    next_index = itertools.count().__next__
    deadline = time.monotonic() + args.seconds

    def worker() -> None:
        client = PageClient(port, None)
        mine = []
        try:
            while time.monotonic() < deadline and (i := next_index()) < len(jobs):
                page, rider = jobs[i]
                t0 = time.perf_counter()
                try:
                    status, body, _ = client.fetch("GET", rider.path(page),
                                                   request_headers(rider, page))  # fmt: skip
                except (OSError, http.client.HTTPException):
                    status, body = 599, b""
                mine.append((page.name, time.perf_counter() - t0, status, len(body)))
        finally:
            client.close()
        with lock:
            for name, seconds, status, size in mine:
                stats[name].add(seconds, status, size)

    seconds, _ = run_threads(worker, clients)
    return stats, seconds


def warm_server(port: int, riders) -> None:
    """Each page a few times on every worker thread (statements prepared, templates compiled)."""
    client = PageClient(port, None)
    for page in PAGES:
        for rider in riders[:16]:
            client.fetch("GET", rider.path(page), request_headers(rider, page))
    client.close()


class Load:
    """The machine's CPU during a phase: all of it, and what is not this bench's (this
    process, the gunicorn workers, the PostgreSQL backends of its database, redis-server)."""

    def __init__(self, admin, r, server: Gunicorn):
        self.admin, self.r, self.server = admin, r, server
        self.before: dict = {}

    def _snapshot(self) -> dict:
        pids = self.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (DB_NAME,)
        ).fetchall()
        times = os.times()
        return {
            "pg": {pid: cpu_seconds(pid) for (pid,) in pids},
            "app": {pid: cpu_seconds(pid) for pid in self.server.workers()},
            "self": times.user + times.system,
            "redis": redis_cpu(self.r),
            "ticks": machine_ticks(),
        }

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self) -> tuple[float, float]:
        """(share of both cores busy, share busy with other work)."""
        a, b = self.before, self._snapshot()
        ours = b["self"] - a["self"] + b["redis"] - a["redis"]
        for kind in ("pg", "app"):
            ours += sum(v - a[kind].get(pid, 0.0) for pid, v in b[kind].items())
        busy = (b["ticks"][0] - a["ticks"][0]) / CLK_TCK
        total = max(b["ticks"][1] - a["ticks"][1], 1) / CLK_TCK
        return busy / total, max(busy - ours, 0.0) / total


def wait_quiet(seconds: float) -> None:
    """Wait up to ``seconds`` for the machine to be quiet (other work under 10% of the cores)."""
    deadline = time.monotonic() + seconds
    busy = background_busy()
    while busy > 0.1 and time.monotonic() < deadline:
        busy = background_busy(5.0)
    say(f"  machine busy before the phase: {busy * 100:.0f}% of the cores")


def phase_note(load: tuple[float, float]) -> str:
    busy, other = load
    note = f"both cores {busy * 100:.0f}% busy, other work {other * 100:.0f}%"
    return note + (" (figures pessimistic)" if other > 0.1 else "")


# --- the slowest page -----------------------------------------------------------------------


def explain_slowest(meter: Meter, page: Page, requests: int, dsn: str) -> list[str]:
    """The statements of ``page`` measured in process, and EXPLAIN (ANALYZE, BUFFERS) of the
    one with the highest p95, with the parameters of its last run, as the app runs it."""
    import psycopg
    from psycopg import sql

    shapes = [(st, v) for (name, st), v in meter.shapes.items() if name == page.name]
    shapes.sort(key=lambda sv: -sum(sv[1][0]))
    lines = [f"{page.name}: statements per request, p50 / p95 / max ms (in process)"]
    for statement, (took, _) in shapes:
        lines.append(
            f"  {len(took) / requests:4.1f}  {pct(took, 0.5):6.2f} {pct(took, 0.95):6.2f} "
            f"{max(took) * 1e3:7.2f}  {' '.join(statement.split())[:140]}"
        )
    if not shapes:
        return lines
    statement, (_, params) = max(shapes, key=lambda sv: pct(sv[1][0], 0.95))
    names: list[str] = []

    def dollar(match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    lines.append(f"  the highest p95: {' '.join(statement.split())}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        if isinstance(params, dict):
            text = re.sub(r"%\((\w+)\)s", dollar, statement).replace("%%", "%")
            values = ", ".join(sql.Literal(params[n]).as_string(conn) for n in names)
            conn.execute("SET plan_cache_mode = force_generic_plan")
            conn.execute(f"PREPARE bench_slowest AS {text}")
            plan = conn.execute(
                f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_slowest({values})"
            ).fetchall()
            lines.append(f"  EXPLAIN (ANALYZE, BUFFERS), generic plan (as the app), ({values}):")
        else:
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).fetchall()
            lines.append("  EXPLAIN (ANALYZE, BUFFERS):")
        lines += [f"    {row[0]}" for row in plan]
    return lines


# --- the report ---------------------------------------------------------------------------------


def trio(values: list[float]) -> str:
    return f"{pct(values, 0.5):6.1f} {pct(values, 0.95):6.1f} {pct(values, 0.99):6.1f}"


def report(args, data: Data, riders, signin, local, http1, httpn, css: int) -> list:
    """Print the table of every page; return the pages that miss a target."""
    say("")
    say(
        f"{data.members:,} members, {args.entries:,} ledger entries, {len(data.stations):,} "
        f"stations; {len(riders)} members sampled ({sum(r.heavy for r in riders)} of them drawn "
        f"from the {HEAVY_POOL:,} longest ledgers); boards: {args.boards}"
    )
    say(
        f"sign-in over HTTP, 1 client: login-link p50/p95 {pct(signin['link'], 0.5):.1f} / "
        f"{pct(signin['link'], 0.95):.1f} ms; opening the link p50/p95 "
        f"{pct(signin['open'], 0.5):.1f} / {pct(signin['open'], 0.95):.1f} ms"
    )
    say(
        "ms: p50 p95 p99 of each phase; in process = Flask test client, one thread (server "
        "time: the target); SQL/Redis: median ms and statements/calls per request in process; "
        f"HTML bytes: median / max; + {css:,} bytes of CSS for the 100 KB check"
    )
    head = (
        f"{'page':<38} {'in process p50/95/99':>20} {'CPU':>5} {'SQL ms (n)':>11} "
        f"{'Redis (n)':>10} {'HTTP 1 cl.':>20} {f'HTTP {args.clients} cl.':>20} "
        f"{'HTML bytes':>15} {'errors':>6}"
    )
    say(head)
    misses = []
    for p in PAGES:
        s, h1, hn = local[p.name], http1[p.name], httpn[p.name]
        errors = s.errors + h1.errors + hn.errors
        size = max(s.sizes or [0])
        say(
            f"{p.name:<38} {trio(s.seconds):>20} {median(s.cpu) * 1e3:5.1f} "
            f"{median(s.sql) * 1e3:5.1f} ({median(s.statements):>3}) "
            f"{median(s.redis) * 1e3:4.1f} ({median(s.redis_calls):>2}) "
            f"{trio(h1.seconds):>20} {trio(hn.seconds):>20} "
            f"{median(s.sizes):>7,} / {size:>6,} {errors:>6}"
        )
        p95 = pct(s.seconds, 0.95)
        if p95 >= TARGET_MS or size + css >= SIZE_LIMIT or errors:
            misses.append((p, p95, size, errors))
    first = PAGES[0].name
    say(
        f"(requests per page in process: {len(local[first].seconds)}; over HTTP: "
        f"{len(http1[first].seconds)} and {len(httpn[first].seconds)})"
    )
    unexpected = {p.name: dict(st.statuses) for p in PAGES for st in
                  (local[p.name], http1[p.name], httpn[p.name]) if st.errors}  # fmt: skip
    if unexpected:
        say(f"unexpected statuses: {unexpected}")
    scale = ""
    if data.members < 1_000_000 or args.entries < 10_000_000:
        scale = f"   [at {data.members:,} members / {args.entries:,} entries, not the full size]"
    slowest = max(PAGES, key=lambda p: pct(local[p.name].seconds, 0.95))
    say("")
    say(
        f"target  {'met    ' if not any(m[1] >= TARGET_MS for m in misses) else 'NOT MET'} "
        f"server time per page p95 < {TARGET_MS:.0f} ms in process: slowest "
        f"{slowest.name} {pct(local[slowest.name].seconds, 0.95):.1f} ms{scale}"
    )
    biggest = max(PAGES, key=lambda p: max(local[p.name].sizes or [0]))
    big = max(local[biggest.name].sizes or [0])
    say(
        f"target  {'met    ' if big + css < SIZE_LIMIT else 'NOT MET'} each page < 100 KB "
        f"(HTML + CSS): largest {biggest.name} {big:,} + {css:,} bytes"
    )
    errors = sum(m[3] for m in misses)
    say(f"check   {'ok     ' if not errors else 'FAILED '} non-200 answers: {errors}")
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--stations", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="50,000 members, 500,000 entries")
    parser.add_argument("--sample", type=int, default=200, help="members signed in and measured")
    parser.add_argument("--events", type=int, default=15, help="events per sampled member")
    parser.add_argument("--redemptions", type=int, default=8, help="per sampled member")
    parser.add_argument("--boards", choices=["auto", "rebuild", "pages"], default="auto")
    parser.add_argument("--passes", type=int, default=2, help="in-process runs of every request")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=300, help="time limit of a phase")
    parser.add_argument(
        "--wait-quiet", type=float, default=180,
        help="seconds to wait before each phase for other work on the machine to stop",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database and Redis DB 3")
    parser.add_argument("--reuse", action="store_true", help="use the database kept by --keep")
    parser.add_argument("--min-free-gib", type=float, default=1.5)
    parser.add_argument("--port", type=int, default=8785)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()
    if args.quick:
        args.members, args.entries, args.sample = 50_000, 500_000, 100

    import psycopg
    import redis

    rng = random.Random(4)
    env = {
        **os.environ,
        "DATABASE_URL": f"{args.postgres}/{DB_NAME}",
        "REDIS_URL": args.redis,
        "RULES_DIR": str(ROOT / "rules"),
        "SECRET_KEY": "bench-pages",
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
    if not args.reuse:
        r.flushdb()
    drop = not args.keep
    server = None
    run_started = time.perf_counter()
    try:
        with (
            Watchdog(int(args.min_free_gib * GIB)) as dog,
            tempfile.TemporaryDirectory(prefix="bench_pages_") as tmp_name,
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
            say(f"data ready in {time.perf_counter() - started:.0f} s")
            if args.boards == "auto":
                args.boards = "rebuild" if data.members <= 200_000 else "pages"

            from app import create_app

            app = create_app()
            longest = longest_ledgers(data)
            with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
                kept = conn.execute(
                    "SELECT value FROM bench_meta WHERE name = 'pages_sample'"
                ).fetchone()
            if kept:
                ids, heavy = json.loads(kept[0])
                say(f"sample and its activity kept from an earlier run: {len(ids)} members")
            else:
                ids, heavy = choose_sample(data, args.sample, longest, rng)
                say(f"activity of the {len(ids)} sampled members ...")
                add_activity(app, data, ids, args, rng)
                with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
                    conn.execute(
                        "INSERT INTO bench_meta VALUES ('pages_sample', %s)",
                        (json.dumps([ids, heavy]),),
                    )
            riders = [
                Rider(mid, f"m{mid:07d}", data.industry(mid - 1), i < heavy,
                      data.entries_of[mid - 1])
                for i, mid in enumerate(ids)
            ]  # fmt: skip
            with psycopg.connect(env["DATABASE_URL"]) as conn:
                codes = dict(conn.execute(
                    "SELECT DISTINCT ON (member_id) member_id, code FROM redemptions "
                    "ORDER BY member_id, created_at DESC"
                ).fetchall())  # fmt: skip
            for rider in riders:
                rider.code = codes.get(rider.id, "NONE0000")

            mode = r.get("bench:pages:boards")
            if args.reuse and mode and mode.decode() == args.boards:
                say(f"boards kept in {args.redis} ({mode.decode()}): not filled again")
            else:
                fill_boards(app, args.boards)

            server = Gunicorn(
                "app:create_app()", args.port,
                SimpleNamespace(workers=2, worker_class="gthread", threads=4),
                env, tmp / "app.log",
            )  # fmt: skip
            server.wait_ready()
            signin = sign_in(args.port, data.key, riders)
            say(f"{len(riders)} members signed in over HTTP")

            meter = Meter()
            meter.install(app)
            machine = Load(admin, r, server)
            say("in process (Flask test client, one thread) ...")
            wait_quiet(args.wait_quiet)
            t0 = time.perf_counter()
            machine.start()
            local = in_process(app, meter, riders, args, rng)
            say(f"  {sum(len(s.seconds) for s in local.values()):,} requests in "
                f"{time.perf_counter() - t0:.0f} s; {phase_note(machine.stop())}")  # fmt: skip
            warm_server(args.port, riders)
            say("over HTTP, 1 client ...")
            wait_quiet(args.wait_quiet)
            machine.start()
            http1, s1 = over_http(args.port, riders, 1, args, rng)
            say(f"  {sum(len(s.seconds) for s in http1.values()):,} requests in {s1:.0f} s; "
                f"{phase_note(machine.stop())}")  # fmt: skip
            say(f"over HTTP, {args.clients} clients ...")
            wait_quiet(args.wait_quiet)
            machine.start()
            httpn, sn = over_http(args.port, riders, args.clients, args, rng)
            n = sum(len(s.seconds) for s in httpn.values())
            say(f"  {n:,} requests in {sn:.0f} s ({n / sn:,.0f} requests/s); "
                f"{phase_note(machine.stop())}")  # fmt: skip
            server.stop()
            log = server.tail()
            server = None

            css = CSS.stat().st_size
            misses = report(args, data, riders, signin, local, http1, httpn, css)
            slowest = max(PAGES, key=lambda p: pct(local[p.name].seconds, 0.95))
            say("")
            say("the slowest page (p95 in process):")
            n = len(local[slowest.name].seconds)
            for line in explain_slowest(meter, slowest, n, env["DATABASE_URL"]):
                say(line)
            say(f"lowest memory available during the run: {dog.lowest / GIB:.1f} GiB; "
                f"whole run {time.perf_counter() - run_started:.0f} s")  # fmt: skip
            if any(m[3] for m in misses):
                say(f"gunicorn log tail:\n{log}")
                sys.exit(1)
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            with contextlib.suppress(Exception):
                r.flushdb()
        r.close()
        if drop:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
