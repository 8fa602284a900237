"""Command-line interface (``flask --app app ...``): thin commands that call the engine and
services and print their results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .engine import describe, load_ruleset
from .engine.format import json_schema
from .errors import AppError
from .extensions import db

rules_cli = AppGroup("rules", help="Check and inspect rules files.")
partners_cli = AppGroup("partners", help="Partner platforms and their API keys.")
orgs_cli = AppGroup("orgs", help="Organisations.")
ledger_cli = AppGroup("ledger", help="The ledger.")
demo_cli = AppGroup("demo", help="Demo data for trying the service out.")
boards_cli = AppGroup("boards", help="Leaderboards: rebuild, close periods, show.")


@rules_cli.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def rules_check(directory: str | None, strict: bool) -> None:
    """Validate a rules directory (default: RULES_DIR) and run its examples.

    Prints each problem as path:line:column: message and exits non-zero on any error (and on
    any warning with --strict); prints a one-line summary when the rules are accepted.
    """
    directory = directory or current_app.config["RULES_DIR"]
    result = load_ruleset(directory, current_app.config["APP_TIMEZONE"])
    for d in sorted(result.diagnostics, key=lambda d: (d.path, d.line, d.col)):
        click.echo(str(d), err=True)
    if result.ruleset is None:
        click.echo(describe(result), err=True)
        sys.exit(1)
    click.echo(describe(result))
    if strict and result.warnings:
        click.echo(f"--strict: {len(result.warnings)} warning(s) count as errors", err=True)
        sys.exit(1)


@rules_cli.command("schema")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file.")
def rules_schema(output: str | None) -> None:
    """Print the JSON Schema of the rules format (rules/schema.json is this output)."""
    text = json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@rules_cli.command("publish")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--note", default=None, help="Why: shown with the version.")
@click.option("--recalculate-from", "since", type=click.DateTime(["%Y-%m-%d"]),
              help="Then re-score the events since this local date (an RQ job).")  # fmt: skip
@click.option("--parts", type=click.IntRange(1, 64), default=None,
              help="Split the recalculation over this many jobs (one per worker), then "
                   "rebuild the boards [default: RECALCULATE_PARTS].")  # fmt: skip
def rules_publish(directory: str, note: str | None, since, parts: int | None) -> None:
    """Check DIRECTORY and make it the rules version in force, for every process (each
    switches within RULES_POLL_SECONDS). Publishing an earlier version again rolls back.
    With --recalculate-from, stored events since that date are re-scored under it by
    appending reversing and new ledger entries (see `flask jobs` for its progress)."""
    from .jobs.rules import enqueue_recalculation
    from .services.rules import publish

    try:
        ruleset = publish(directory, "cli", note)
        db.session.commit()
    except AppError as exc:
        for line in exc.details.get("errors", []) if isinstance(exc.details, dict) else []:
            click.echo(line, err=True)
        raise click.ClickException(exc.message) from None
    click.echo(f"rules version {ruleset.version} published: {ruleset.rule_count} rules in "
               f"{len(ruleset.files)} files")  # fmt: skip
    if since is not None:
        for job in enqueue_recalculation(ruleset.version, since.date(), parts):
            result = job.return_value() if job.is_finished else None
            if result is not None and "events" in result:  # run inline (no REDIS_URL)
                click.echo(f"recalculated since {since.date()}: {result['events']} events, "
                           f"{result['changed']} changed, -{result['reversed_points']} "
                           f"+{result['credited_points']} points")  # fmt: skip
            elif result is not None:
                click.echo("leaderboards rebuilt")
            else:
                click.echo(f"job {job.id} queued ({job.description}); see: "
                           f"flask --app app jobs {job.id}")  # fmt: skip


@rules_cli.command("simulate")
@click.option("--rules", "directory", required=True, type=click.Path(file_okay=False),
              help="The candidate rules directory.")  # fmt: skip
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 100))
def rules_simulate(directory: str, start, end, top: int) -> None:
    """Replay the stored events from --from to --to (local dates) under a candidate rule set,
    writing nothing: points per rule before and after, the members most affected, and the
    organisations whose top of the range changes."""
    from .services.rules import current_rules
    from .services.simulate import simulate

    result = load_ruleset(directory, current_app.config["APP_TIMEZONE"])
    for d in result.diagnostics:
        click.echo(str(d), err=True)
    if result.ruleset is None:
        raise click.ClickException(f"{directory}: the candidate rules have errors")
    if end < start:
        raise click.ClickException("--to is before --from")
    with click.progressbar(length=1, label="replaying events", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        sim = simulate(current_rules(), result.ruleset, start.date(), end.date(), progress, top)
    click.echo(f"{sim.events} events from {start.date()} to {end.date()}: {sim.before} points "
               f"under {sim.current_version}, {sim.after} under {sim.candidate_version} "
               f"({sim.after - sim.before:+d})")  # fmt: skip
    click.echo("points per rule (before -> after):")
    for row in sim.rules():
        click.echo(f"  {row['rule']}: {row['before']} -> {row['after']} "
                   f"({row['after'] - row['before']:+d})")  # fmt: skip
    click.echo("members most affected:")
    for row in sim.members:
        click.echo(f"  member {row['member_id']}: {row['before']} -> {row['after']} "
                   f"({row['change']:+d})")  # fmt: skip
    click.echo(f"organisations whose top {top} changes: {len(sim.boards)}")
    for board in sim.boards[:20]:
        before = ", ".join(f"{m}:{p}" for m, p in board["before"][:5])
        after = ", ".join(f"{m}:{p}" for m, p in board["after"][:5])
        click.echo(f"  {board['scope']}: [{before}] -> [{after}]")


@partners_cli.command("create")
@click.argument("name")
@click.option("--code", help="Short code (default: from the name).")
@click.option("--org", "orgs", multiple=True, help="May report for this subtree (repeat).")
@click.option("--type", "types", multiple=True, help="May report these event types (repeat).")
def partners_create(name: str, code: str | None, orgs: tuple, types: tuple) -> None:
    """Create a partner and print its new API key, alone on the last line.

    Only a hash of the key is stored: copy it now.
    """
    from .services.partners import create_partner

    try:
        partner, key = create_partner(name, code, list(orgs) or None, list(types) or None)
        db.session.commit()
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"partner {partner.code} ({partner.name}) created; its API key:")
    click.echo(key)


@partners_cli.command("add-key")
@click.argument("code")
def partners_add_key(code: str) -> None:
    """Give partner CODE a new API key (for rotation: the old ones stay valid until revoked);
    print it alone on the last line."""
    from .services.partners import add_key, key_id_of, partner_by_code

    try:
        key = add_key(partner_by_code(code))
        db.session.commit()
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"partner {code}: new API key {key_id_of(key)} (the old keys stay valid):")
    click.echo(key)


@partners_cli.command("revoke-key")
@click.argument("key_id")
def partners_revoke_key(key_id: str) -> None:
    """Revoke API key KEY_ID (the part after ``pp_``) and with it its signing secret."""
    from .services.partners import revoke_key

    try:
        row = revoke_key(key_id)
        db.session.commit()
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    seconds = current_app.config["PARTNER_KEY_CACHE_SECONDS"]
    click.echo(f"key {key_id} revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S} UTC; every process "
               f"refuses it within {seconds} s")  # fmt: skip


@partners_cli.command("signing")
@click.argument("code")
@click.option("--required/--optional", required=True,
              help="Whether every request of the partner must be signed.")  # fmt: skip
def partners_signing(code: str, required: bool) -> None:
    """Require (or stop requiring) partner CODE to sign every request (HMAC-SHA256)."""
    from .services.partners import partner_by_code

    try:
        partner = partner_by_code(code)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    partner.signing_required = required
    db.session.commit()
    seconds = current_app.config["PARTNER_KEY_CACHE_SECONDS"]
    state = "required" if required else "optional (a signature sent is still checked)"
    click.echo(f"partner {code}: signing {state}; in force within {seconds} s")


@partners_cli.command("signing-secret")
@click.argument("key_id")
def partners_signing_secret(key_id: str) -> None:
    """Print the signing secret of API key KEY_ID, for the partner's side of signing.

    It is derived from the key id and PARTNER_SIGNING_KEY, never stored.
    """
    from sqlalchemy import select

    from .models import PartnerKey
    from .services.partners import signing_secret

    row = db.session.scalar(select(PartnerKey).where(PartnerKey.key_id == key_id))
    if row is None or row.revoked_at is not None:
        raise click.ClickException(f"no active API key {key_id!r}")
    click.echo(signing_secret(key_id))


@orgs_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def orgs_import(file: str) -> None:
    """Create or update organisations from a CSV (code,name,kind) or YAML file.

    Running it again with the same file changes nothing; any bad row refuses the whole file.
    """
    from .services.orgs import import_orgs, parse_rows

    try:
        rows = parse_rows(Path(file).read_text(encoding="utf-8"), file)
        result = import_orgs(rows, file)
        db.session.commit()
    except AppError as exc:
        for line in exc.details.get("errors", []) if isinstance(exc.details, dict) else []:
            click.echo(line, err=True)
        raise click.ClickException(exc.message) from None
    click.echo(
        f"organisations: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )


@demo_cli.command("seed")
@click.option(
    "--weeks", default=3, show_default=True, type=click.IntRange(1, 12), help="Weeks up to today."
)
@click.option("--members-per-station", default=8, show_default=True, type=click.IntRange(1, 200))
@click.option("--seed", default=7, show_default=True, help="Seed of the generated data.")
def demo_seed(weeks: int, members_per_station: int, seed: int) -> None:
    """Create demo organisations, the partner 'demo', its members and their events, and
    print a new API key of 'demo', alone on the last line.

    Running it again adds nothing but the new key (on a later day, the days since).
    """
    from .services.demo import seed_demo

    try:
        result = seed_demo(weeks, members_per_station, seed)
        db.session.commit()
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(
        f"demo: {result.orgs_created} organisation(s) created; {result.members} members "
        f"({result.members_created} new); {result.events_posted} events posted "
        f"({result.events_replayed} already stored), {result.points_awarded} points awarded"
    )
    for reason in result.refusals:
        click.echo(f"refused: {reason}", err=True)
    if result.events_refused:
        click.echo(f"demo: {result.events_refused} event(s) refused", err=True)
    click.echo(f"try: curl -H 'Authorization: Bearer <key>' /api/v1/members/{result.sample_ref}")
    click.echo(
        f"rider page: flask --app app members login-link {result.sample_ref} "
        "(prints a link that works once, for a few minutes)"
    )
    click.echo("partner demo (演示平台); a new API key:")
    click.echo(result.key)


@ledger_cli.command("verify")
@click.option("--queue", "queued", is_flag=True, help="Run it on a worker; print the job id.")
def ledger_verify(queued: bool) -> None:
    """Check every member's hash chain and balance; name the first broken entry of each.

    Exits non-zero when a problem is found.
    """
    from .jobs import enqueue
    from .jobs.ledger import verify_ledger_job

    if queued:
        job = enqueue(verify_ledger_job, description="verify the ledger")
        click.echo(f"job {job.id} queued; see: flask --app app jobs {job.id}")
        return
    report = verify_ledger_job()
    for problem in report["problems"]:
        click.echo(
            f"member {problem['member']}: entry {problem.get('entry')}: {problem['problem']}",
            err=True,
        )
    click.echo(
        f"ledger {'OK' if report['ok'] else 'BROKEN'}: {report['members']} members, "
        f"{report['entries']} entries, {len(report['problems'])} problem(s)"
    )
    if not report["ok"]:
        sys.exit(1)


@ledger_cli.command("export")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-",
              help="Where to write (default: standard output).")  # fmt: skip
def ledger_export(output) -> None:
    """Write the whole ledger with its hashes as JSON lines, for an auditor.

    Check it with scripts/verify_ledger_export.py FILE (Python's standard library only).
    """
    from .services.audit import export_ledger

    lines = 0
    for line in export_ledger():
        output.write(line)
        lines += 1
    click.echo(f"exported {lines - 1} lines", err=True)


@boards_cli.command("rebuild")
@click.option("--queue", "queued", is_flag=True, help="Run it on a worker; print the job id.")
@click.option("--no-drift", is_flag=True, help="Skip comparing with the live boards.")
def boards_rebuild(queued: bool, no_drift: bool) -> None:
    """Recompute every live board from the ledger and swap it in; report drift."""
    from .jobs.boards import enqueue_rebuild, rebuild_boards_job

    if queued:
        job = enqueue_rebuild("requested from the command line", check_drift=not no_drift)
        click.echo(f"job {job.id} queued; see: flask --app app jobs {job.id}")
        return
    report = rebuild_boards_job("requested from the command line", check_drift=not no_drift)
    click.echo(
        f"rebuilt {report['boards']} boards ({report['members']} lines) of periods "
        f"{', '.join(report['periods'])} from {report['ledger_rows']} ledger groups in "
        f"{report['seconds']} s; drift: {report['drift_lines']} line(s) on "
        f"{report['drift_boards']} board(s); {report['dropped']} board(s) dropped"
    )


@boards_cli.command("close")
@click.option("--queue", "queued", is_flag=True, help="Run it on a worker; print the job id.")
def boards_close(queued: bool) -> None:
    """Archive every ended week, month and year not archived yet."""
    from .jobs.boards import close_periods_job, enqueue_close

    if queued:
        job = enqueue_close()
        click.echo(f"job {job.id} queued; see: flask --app app jobs {job.id}")
        return
    report = close_periods_job()
    closed = ", ".join(report["closed"]) or "none"
    click.echo(f"closed: {closed}; {report['boards']} boards, {report['rows']} lines archived")


@boards_cli.command("show")
@click.argument("scope")
@click.option("--period", default="week", show_default=True)
@click.option("--category", default="total", show_default=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
def boards_show(scope: str, period: str, category: str, limit: int) -> None:
    """Print the top of a board (masked names)."""
    from .models.base import utcnow
    from .redis_client import get_redis
    from .services.boards import read
    from .services.boards.keys import OpenPeriods

    try:
        period = OpenPeriods.at(utcnow(), current_app.config["APP_TIMEZONE"]).resolve(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    total, lines = read.page(get_redis(), scope, period, category, limit, 0)
    names = read.names(line.member_id for line in lines)
    click.echo(f"{scope} {period} {category}: {total} ranked")
    for line in lines:
        click.echo(f"{line.rank:>6}  {line.points:>8}  {names.get(line.member_id, '')}")


@click.command("scheduler")
def scheduler_command() -> None:
    """Run RQ's cron scheduler: close ended periods every 5 minutes, and rebuild every
    board from the ledger (the reconciliation) every night at 03:30 local time."""
    from .jobs.schedule import run_scheduler
    from .redis_client import is_embedded

    if is_embedded():
        raise click.ClickException("set REDIS_URL: the scheduler enqueues jobs for RQ workers")
    run_scheduler()


@click.command("jobs")
@click.argument("job_id", required=False)
def jobs_command(job_id: str | None) -> None:
    """Show background jobs: recent ones, or one job's status, progress and outcome."""
    from .jobs import job_status, recent_jobs

    if job_id:
        status = job_status(job_id)
        if status is None:
            raise click.ClickException(f"no job {job_id}")
        click.echo(json.dumps(status, ensure_ascii=False, indent=2, default=str))
        return
    for j in recent_jobs():
        done = j["meta"].get("done")
        total = j["meta"].get("total")
        step = f" {done}/{total}" if done is not None else ""
        click.echo(f"{j['id']}  {j['status']:<9}{step}  {j['description']}")


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker_command(queues: tuple, burst: bool) -> None:
    """Run an RQ worker for QUEUES (default: all) with REDIS_URL.

    A non-forking worker: jobs run in this process, inside this app's context. A job whose
    worker died is retried within JOB_HEARTBEAT_SECONDS + WORKER_MAINTENANCE_SECONDS.
    """
    from .jobs import QUEUES, queue
    from .jobs.worker import build_worker
    from .redis_client import get_redis, is_embedded

    if is_embedded():
        raise click.ClickException("set REDIS_URL: without it jobs run inline, no worker needed")
    config = current_app.config
    worker = build_worker(
        [queue(q) for q in queues or QUEUES],
        get_redis(),
        heartbeat=config["JOB_HEARTBEAT_SECONDS"],
        maintenance=config["WORKER_MAINTENANCE_SECONDS"],
    )
    worker.work(burst=burst, with_scheduler=True)


def init_app(app: Flask) -> None:
    from . import cli_console, cli_rewards

    for group in (
        *cli_rewards.COMMANDS,
        *cli_console.COMMANDS,
        rules_cli,
        partners_cli,
        orgs_cli,
        ledger_cli,
        jobs_command,
        worker_command,
        scheduler_command,
        boards_cli,
        demo_cli,
    ):
        app.cli.add_command(group)
