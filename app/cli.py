"""Command-line interface (``flask --app app ...``): thin commands that call the engine and
services and print their results."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .engine import describe, load_ruleset
from .engine.format import json_schema

rules_cli = AppGroup("rules", help="Check and inspect rules files.")


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
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def init_app(app: Flask) -> None:
    app.cli.add_command(rules_cli)
