"""Benchmark recalculation (issue #7): re-score stored events under a newly published rules
version, in one process, as the RQ job runs it.

    .venv/bin/python scripts/bench/bench_recalculate.py [--quick] [--members 100000]
        [--events 1000000] [--profile] [--keep]

1. Data: drops and recreates its own PostgreSQL database ``pp_bench_recalc`` (dropped at the
   end, also on error, unless ``--keep``), migrates it with ``flask db upgrade``, imports the
   organisations of the shipped rules/ tree (``flask orgs import``) and creates a partner
   (``flask partners create``). Then loads with COPY: the members (one of the tree's stations
   each, round robin) with their partner references, and the events: pioneer.shift (40%),
   volunteer.hours (20%; both with hours/start/end spans in distinct 5-hour slots per member, so
   they never overlap), governance.hazard_report (20%, with severity) and
   governance.grid_patrol (20%), spread over the last 60 days, status 'awarded', rules_version
   = the version of the shipped rules. No ledger entries are loaded: the recalculation then
   finds nothing credited and credits every event (one award row per rule that pays), the
   heaviest case. Members' balances start at 0. Redis: database 2 (``--redis``), flushed at the
   start and at the end; the boards are updated live after each batch.
2. Loads a candidate: a copy of rules/ with the province's shift points doubled (5 → 10 per hour,
   as the ``doubled`` fixture of tests/services/test_recalculate.py), publishes it with
   ``services.rules.publish`` in an app context, and times ``recalculate(new, since=60 days
   ago)`` in this process: events/s, seconds, ledger rows written, peak RSS added.
3. Verifies: every event in the window has the new rules_version; for a sample of members the
   balance == the sum of their ledger entries.
4. ``--profile``: the recalculation runs under cProfile; prints where the time goes (SQL round
   trips and ORM loading vs scoring vs ledger writes vs boards and badges).

Target (issue #7): 1,000,000 stored events re-scored in < 120 s on this machine.
"""

# ruff: noqa: E501
from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import json
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import ROOT, Analyzer, flask_cli, stations
from bench_leaderboards import code_version, reset_rss_peak, rss_now, rss_peak

DB_NAME = "pp_bench_recalc"
PARTNER = "bench"
WINDOW_DAYS = 60
SLOT_HOURS = 5
INDUSTRIES = ["delivery", "express", "transport", "internet"]
MEMBER_COLUMNS = (
    "id, display_name, party_member, industry, primary_org_id, tags, balance, lifetime_points, "
    "ledger_seq, ledger_head, version, hidden, no_phone_merge, created_at, updated_at"
)
EVENT_COLUMNS = (
    "id, partner_id, partner_event_id, body_hash, type, member_id, org_code, occurred_at, "
    "received_at, data, status, rules_version, points, span_start, span_end, response"
)
MB = 1024 * 1024


def say(text: str) -> None:
    print(text, flush=True)


def iso(t: dt.datetime) -> str:
    return t.isoformat()


def load(args, env: dict, admin, version: str) -> dict:
    """Create, migrate and fill the database."""
    import psycopg

    admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    t0 = time.perf_counter()
    flask_cli(env, "db", "upgrade")
    rows, leaves = stations(ROOT / "rules")
    with tempfile.TemporaryDirectory(prefix="bench_recalc_") as tmp:
        csv_path = Path(tmp) / "orgs.csv"
        csv_path.write_text(
            "code,name,kind\n" + "".join(f"{c},{n},{k}\n" for c, n, k in rows), encoding="utf-8"
        )
        flask_cli(env, "orgs", "import", str(csv_path))
    flask_cli(env, "partners", "create", "基准测试平台", "--code", PARTNER)
    say(f"setup: {DB_NAME} migrated, {len(rows)} organisations, partner created in "
        f"{time.perf_counter() - t0:.1f} s; members at {len(leaves)} stations")  # fmt: skip

    rng = random.Random(7)
    tz = dt.timezone(dt.timedelta(hours=8))
    now = dt.datetime.now(tz).replace(microsecond=0)
    start = now - dt.timedelta(days=WINDOW_DAYS) + dt.timedelta(hours=2)  # inside the window
    n_slots = (WINDOW_DAYS * 24 - 2 * SLOT_HOURS) // SLOT_HOURS
    members, events = args.members, args.events
    now_text = now.astimezone(dt.UTC).isoformat()
    t0 = time.perf_counter()
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading
        conn.execute("SET maintenance_work_mem = '512MB'")
        partner_id = conn.execute("SELECT id FROM partners WHERE code = %s", (PARTNER,)).fetchone()[0]  # fmt: skip
        org_id = dict(conn.execute("SELECT code, id FROM organisations").fetchall())
        station_of = [leaves[m % len(leaves)] for m in range(members)]
        with conn.cursor() as cur, cur.copy(f"COPY members ({MEMBER_COLUMNS}) FROM STDIN") as copy:
            buf = []
            for m in range(members):
                buf.append(
                    f"{m + 1}\t骑手{m:06d}\t{'t' if rng.random() < 0.4 else 'f'}\t"
                    f"{INDUSTRIES[m % 4]}\t{org_id[station_of[m]]}\t[]\t0\t0\t0\t\t0\tf\tf\t"
                    f"{now_text}\t{now_text}\n"
                )
                if len(buf) >= 20_000:
                    copy.write("".join(buf))
                    buf = []
            copy.write("".join(buf))
        with conn.cursor() as cur, cur.copy("COPY member_orgs (member_id, org_id, org_code) FROM STDIN") as copy:  # fmt: skip
            copy.write("".join(f"{m + 1}\t{org_id[s]}\t{s}\n" for m, s in enumerate(station_of)))
        with conn.cursor() as cur, cur.copy("COPY partner_members (partner_id, ref, member_id, created_at) FROM STDIN") as copy:  # fmt: skip
            copy.write("".join(f"{partner_id}\tm{m + 1:07d}\t{m + 1}\t{now_text}\n"
                               for m in range(members)))  # fmt: skip
        members_s = time.perf_counter() - t0

        # events: who and what, then distinct span slots per member, then sorted by time (as
        # they would have arrived) so the heap is interleaved across members
        t0 = time.perf_counter()
        who = rng.choices(range(members), k=events)
        kinds = rng.choices(range(4), weights=[4, 2, 2, 2], k=events)
        per_member = Counter(who[i] for i in range(events) if kinds[i] < 2)
        free = {m: rng.sample(range(n_slots), min(n, n_slots)) for m, n in per_member.items()}
        plan = []
        types = Counter()
        for i in range(events):
            m, kind = who[i], kinds[i]
            if kind < 2:
                slots = free[m]
                if slots:
                    s = slots.pop()
                    when = start + dt.timedelta(hours=s * SLOT_HOURS, minutes=rng.randint(0, 60))
                else:
                    kind = 2  # this member's window is full: a hazard report instead
            if kind >= 2:
                when = start + dt.timedelta(seconds=rng.randint(0, WINDOW_DAYS * 86400 - 6 * 3600))  # fmt: skip
            plan.append((when, m, kind))
        plan.sort(key=lambda p: p[0])
        with conn.cursor() as cur, cur.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN") as copy:
            buf = []
            for i, (when, m, kind) in enumerate(plan, 1):
                span_s = span_e = "\\N"
                if kind < 2:
                    hours = rng.choice([0.5, 1, 1.5, 2, 3, 4]) if kind == 0 else rng.choice([2, 3])
                    end = when + dt.timedelta(hours=hours)
                    data = {"hours": hours, "start": iso(when), "end": iso(end)}
                    if kind == 0:
                        etype, data["post"] = "pioneer.shift", f"post-{rng.randint(1, 40):02d}"
                    else:
                        etype, data["project"] = "volunteer.hours", f"社区志愿服务项目{rng.randint(1, 30)}"  # fmt: skip
                    span_s, span_e = iso(when), iso(end)
                elif kind == 2:
                    etype = "governance.hazard_report"
                    data = {"severity": rng.choice(["low", "medium", "high"]),
                            "confirmed": rng.random() < 0.5}  # fmt: skip
                else:
                    etype = "governance.grid_patrol"
                    data = {"minutes": rng.choice([20, 30, 45, 60, 90, 120]),
                            "issues_found": rng.randint(0, 3)}  # fmt: skip
                types[etype] += 1
                text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("\\", "\\\\")  # fmt: skip
                w = iso(when)
                buf.append(
                    f"{i}\t{partner_id}\tev-{i:08d}\tbench\t{etype}\t{m + 1}\t{station_of[m]}\t"
                    f"{w}\t{w}\t{text}\tawarded\t{version}\t0\t{span_s}\t{span_e}\t{{}}\n"
                )
                if len(buf) >= 20_000:
                    copy.write("".join(buf))
                    buf = []
            copy.write("".join(buf))
        for table in ("members", "partner_members", "events"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT coalesce(max(id), 1) FROM {table}))")  # fmt: skip
        events_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")  # every run starts with the load's WAL written out
        (size,) = conn.execute("SELECT pg_total_relation_size('events')").fetchone()
        with_events = conn.execute("SELECT count(DISTINCT member_id) FROM events").fetchone()[0]
    say(f"  members, member_orgs, partner_members: {members_s:.1f} s; events {events_s:.1f} s; "
        f"VACUUM ANALYZE {time.perf_counter() - t0:.1f} s; events table {size / MB:.0f} MB")  # fmt: skip
    say(f"  events by type: {dict(types)}; {with_events:,} members have events "
        f"(avg {events / max(with_events, 1):.1f} each)")  # fmt: skip
    return {"types": types, "with_events": with_events}


def candidate(tmp: Path) -> Path:
    """rules/ with the province's shift points doubled (the ``doubled`` test fixture)."""
    path = tmp / "candidate"
    shutil.copytree(ROOT / "rules", path)
    sx = path / "sx.yaml"
    text = sx.read_text(encoding="utf-8")
    new = text.replace("points: 5 * min(event.data.hours, 8)", "points: 10 * min(event.data.hours, 8)", 1)  # fmt: skip
    assert new != text, "sx.yaml no longer has the shift rule this bench doubles"
    sx.write_text(new[: new.index("\nexamples:")] + "\n", encoding="utf-8")
    return path


def profile_report(prof: cProfile.Profile, wall: float) -> None:
    st = pstats.Stats(prof)
    say("\nprofile: top 25 by cumulative time")
    st.sort_stats("cumulative").print_stats(25)
    st.sort_stats("tottime").print_stats(20)
    # self time per module family
    own: Counter = Counter()
    for (file, _line, fn), (_cc, _nc, tt, _ct, _callers) in st.stats.items():
        own[f"{file}:{fn}"] += tt
    total = sum(own.values())
    say(f"self time by module family (of {total:.1f} s profiled CPU+wait, {wall:.1f} s wall):")
    fam: Counter = Counter()
    for key, tt in own.items():
        label = "other"
        if "psycopg" in key or "{method 'execute'" in key or "pq" in key or "method 'fetch" in key:
            label = "PostgreSQL driver (psycopg: round trips, waiting on the server)"
        elif "sqlalchemy/orm" in key:
            label = "SQLAlchemy ORM (loading objects, flush)"
        elif "sqlalchemy" in key:
            label = "SQLAlchemy core (compiling, result rows)"
        elif "app/engine" in key:
            label = "rules engine (evaluate)"
        elif "app/services/simulate" in key or "app/events" in key or "validat" in key:
            label = "stored_data / score_event"
        elif "app/services/ledger" in key:
            label = "ledger writer (hash chain)"
        elif "redis" in key or "boards" in key:
            label = "boards (Redis)"
        elif "honours" in key:
            label = "badges and levels"
        elif "app/" in key:
            label = "other app code"
        elif "json" in key or "datetime" in key or "strptime" in key:
            label = "json / datetime parsing"
        fam[label] += tt
    for label, tt in fam.most_common():
        say(f"  {tt:8.2f} s  {tt / total * 100:5.1f}%  {label}")
    say("cumulative time of the recalculation's parts:")
    want = {
        "recalculate.py:_member": "per member (_member: its events loaded, scored, written)",
        "simulate.py:score_event": "  score_event (all events)",
        "recalculate.py:_credited": "  _credited (ledger lookups)",
        "ledger.py:lock_members": "lock_members (per batch)",
        "ledger.py:write": "ledger.write (per batch: INSERT of the rows)",
        "session.py:commit": "commit (flush of dirty events + COMMIT)",
        "honours.py:recheck": "honours.recheck (per batch)",
        "boards.py:record_after_commit": "boards.record_after_commit",
    }
    for (file, _line, fn), (_cc, _nc, _tt, ct, _callers) in st.stats.items():
        key = f"{Path(file).name}:{fn}"
        if key in want:
            say(f"  {ct:8.2f} s  {ct / wall * 100:5.1f}% of wall  {want[key]}")


def _part(version: str, since: dt.date, k: int, n: int) -> dict:
    """One part of a split recalculation, in a process of its own (as one RQ worker)."""
    import resource

    from app import create_app

    app = create_app()
    with app.app_context():
        from app.services.recalculate import recalculate
        from app.services.rules import load_version

        t0 = time.perf_counter()
        started = time.time()

        def progress(rep) -> None:
            if rep.members % 20_000 < 1_000:
                el = time.perf_counter() - t0
                say(f"  part {k + 1}/{n}: {el:7.1f} s  {rep.members:,} members, "
                    f"{rep.events:,} events ({rep.events / el:,.0f}/s)")  # fmt: skip

        report = recalculate(load_version(version), since, part=(k, n), live_boards=False,
                             on_batch=progress)  # fmt: skip
        seconds = time.perf_counter() - t0
    say(f"  part {k + 1}/{n} done in {seconds:.1f} s: {report.events:,} events")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return report.as_dict() | {"peak": peak, "started": started, "ended": time.time()}


def run_parts(version: str, since: dt.date, n: int):
    """Recalculate in ``n`` processes at once; the summed report and the largest peak RSS."""
    import multiprocessing

    from app.services.recalculate import Report

    with multiprocessing.get_context("spawn").Pool(n) as pool:
        results = pool.starmap(_part, [(version, since, k, n) for k in range(n)])
    total = Report(version)
    for r in results:
        for name, value in r.items():
            if name not in ("version", "peak", "started", "ended"):
                setattr(total, name, getattr(total, name) + value)
    span = max(r["ended"] for r in results) - min(r["started"] for r in results)
    say(f"  the parts' own span (first start to last end, without starting the processes and "
        f"the app): {span:.1f} s")  # fmt: skip
    return total, max(r["peak"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10,000 members, 100,000 events")
    parser.add_argument("--profile", action="store_true", help="run the recalculation under cProfile")  # fmt: skip
    parser.add_argument(
        "--analyze-every", type=float, default=10,
        help="seconds between ANALYZEs of the hot tables during the run, as autovacuum would "
        "(this machine's server runs with autovacuum off); 0: never",
    )  # fmt: skip
    parser.add_argument(
        "--parts", type=int, default=2,
        help="recalculate in this many processes at once, each a share of the members, then "
        "rebuild the boards (as RECALCULATE_PARTS does with that many workers); 1: one "
        "process that keeps the boards live",
    )  # fmt: skip
    parser.add_argument(
        "--boards", choices=["live", "rebuild"], default=None,
        help="live: the recalculation feeds the boards as it goes; rebuild: it leaves Redis "
        "alone and the boards are rebuilt after (default: live with --parts 1, else rebuild)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/2")
    args = parser.parse_args()
    if args.quick:
        args.members, args.events = 10_000, 100_000
    args.boards = args.boards or ("live" if args.parts == 1 else "rebuild")
    if args.parts > 1 and args.boards == "live":
        parser.error("--parts > 1 rebuilds the boards after (as the jobs do)")

    import psycopg
    import redis

    env = {
        **os.environ,
        "DATABASE_URL": f"{args.postgres}/{DB_NAME}",
        "REDIS_URL": args.redis,
        "RULES_DIR": str(ROOT / "rules"),
        "SECRET_KEY": "bench-recalc",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "RULES_DIR", "SECRET_KEY")})
    say(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; PostgreSQL {DB_NAME}; "
        f"{args.redis}; {args.members:,} members, {args.events:,} events; {code_version()}")  # fmt: skip
    r = redis.Redis.from_url(args.redis)
    r.flushdb()
    admin = psycopg.connect(f"{args.postgres}/postgres", autocommit=True)
    try:
        from app import create_app

        app = create_app()
        with app.app_context():
            from app.services.rules import current_rules

            old_version = current_rules().version
        say(f"shipped rules version {old_version}")
        load(args, env, admin, old_version)

        with tempfile.TemporaryDirectory(prefix="bench_recalc_") as tmp_name, app.app_context():
            from sqlalchemy import func, select

            from app.extensions import db
            from app.models import Event, LedgerEntry, Member
            from app.services.recalculate import BATCH, recalculate
            from app.services.rules import publish

            new = publish(str(candidate(Path(tmp_name))), "bench")
            db.session.commit()
            say(f"published candidate {new.version} (shift points doubled); recalculating the "
                f"last {WINDOW_DAYS} days, {BATCH} members per batch ...")  # fmt: skip
            since = dt.date.today() - dt.timedelta(days=WINDOW_DAYS)
            entries_before = db.session.scalar(select(func.count(LedgerEntry.id)))
            t_start = time.perf_counter()
            every = max(1, args.members // BATCH // 10)

            def progress(rep) -> None:
                if (rep.members // BATCH) % every == 0:
                    el = time.perf_counter() - t_start
                    say(f"  {el:7.1f} s  {rep.members:,} members, {rep.events:,} events "
                        f"({rep.events / el:,.0f}/s), RSS {rss_now() / MB:,.0f} MB")  # fmt: skip

            rss_before = rss_now()
            reset_rss_peak()
            prof = cProfile.Profile() if args.profile else None
            t0 = time.perf_counter()
            analyzer = (
                Analyzer(env["DATABASE_URL"], args.analyze_every) if args.analyze_every else None
            )
            if analyzer:
                analyzer.__enter__()
            try:
                if args.parts > 1:
                    report, peak = run_parts(new.version, since, args.parts)
                else:
                    if prof:
                        prof.enable()
                    report = recalculate(new, since, on_batch=progress,
                                         live_boards=args.boards == "live")  # fmt: skip
                    if prof:
                        prof.disable()
                    peak = rss_peak()
            finally:
                if analyzer:
                    analyzer.__exit__(None, None, None)
            seconds = time.perf_counter() - t0
            rebuild_s = None
            if args.boards == "rebuild":
                from app.redis_client import get_redis
                from app.services.boards.rebuild import rebuild_boards

                t1 = time.perf_counter()
                rebuilt = rebuild_boards(get_redis(), app.config["APP_TIMEZONE"], check_drift=False)
                rebuild_s = time.perf_counter() - t1
                say(f"boards rebuilt after the parts in {rebuild_s:.1f} s: {rebuilt.boards:,} "
                    f"boards, {rebuilt.members:,} lines")  # fmt: skip
            db.session.expire_all()
            written = db.session.scalar(select(func.count(LedgerEntry.id))) - entries_before
            kinds = dict(db.session.execute(
                select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind)).all())  # fmt: skip
            say(
                "\nANALYZE of the hot tables during the run: "
                + (
                    f"every {args.analyze_every:g} s ({analyzer.runs} runs)"
                    if analyzer
                    else "never"
                )
            )
            how = (f"{args.parts} processes in parallel" if args.parts > 1 else "one process") + (
                ", boards rebuilt after" if args.boards == "rebuild" else ", boards live"
            )
            say(f"RESULT ({how}): {report.events:,} events of {report.members:,} members "
                f"re-scored in {seconds:.1f} s = {report.events / seconds:,.0f} events/s; "
                f"{report.changed:,} "
                f"changed; ledger rows written {written:,} {kinds}; credited "
                f"{report.credited_points:,} points, reversed {report.reversed_points:,}; peak RSS "
                f"{peak / MB:,.0f} MB"
                + (" (the largest part's process)" if args.parts > 1
                   else f" (+{(peak - rss_before) / MB:,.0f} MB over the start)"))  # fmt: skip
            if rebuild_s is not None:
                say(f"then the boards rebuild: {rebuild_s:.1f} s (the leaderboard store of #4)")
            scaled = seconds * 1_000_000 / max(report.events, 1)
            say(f"target: 1,000,000 events < 120 s; at this rate 1,000,000 events take "
                f"{scaled:.0f} s" + (" (linear extrapolation)" if report.events < 1_000_000 else ""))  # fmt: skip

            # verify
            stale = db.session.scalar(
                select(func.count(Event.id)).where(Event.rules_version != new.version)
            )
            rng = random.Random(3)
            ids = rng.sample(range(1, args.members + 1), min(500, args.members))
            bad = 0
            sums = dict(db.session.execute(
                select(LedgerEntry.member_id, func.sum(LedgerEntry.points))
                .where(LedgerEntry.member_id.in_(ids)).group_by(LedgerEntry.member_id)).all())  # fmt: skip
            for m in db.session.scalars(select(Member).where(Member.id.in_(ids))):
                bad += m.balance != int(sums.get(m.id, 0))
            say(f"verify: events not on {new.version}: {stale} (want 0); balances != sum of "
                f"ledger: {bad} of {len(ids)} sampled members (want 0)"
                + ("  OK" if stale == 0 and bad == 0 else "  FAILED"))  # fmt: skip
            db.session.remove()
            if prof:
                profile_report(prof, seconds)
    finally:
        from app.extensions import db as _db

        with contextlib.suppress(Exception):  # no app context / never connected
            _db.engine.dispose()
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            r.flushdb()
            say(f"cleaned up: dropped {DB_NAME}, flushed {args.redis}")
        admin.close()


if __name__ == "__main__":
    main()
