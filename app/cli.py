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


def init_app(app: Flask) -> None:
    for group in (rules_cli, partners_cli, orgs_cli):
        app.cli.add_command(group)
