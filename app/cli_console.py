"""Command-line interface of the console: its users."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

users_cli = AppGroup("users", help="Console users of the organisations.")


@users_cli.command("create")
@click.argument("username")
@click.option("--org", "org_code", required=True, help="The organisation whose subtree it sees.")
@click.option("--role", required=True, type=click.Choice(["admin", "verifier", "station",
                                                          "viewer"]))  # fmt: skip
@click.option("--name", default="", help="The name shown in the console.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username: str, org_code: str, role: str, name: str, password_stdin: bool) -> None:
    """Create a console user; the password is asked for (or read from standard input)."""
    from .errors import AppError
    from .extensions import db
    from .services.console_users import audit, create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(username, password, org_code, role, name)
        audit(None, org_code, "user.create", f"user:{user.username}", None,
              {"org": org_code, "role": role})  # fmt: skip
        db.session.commit()
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"console user {user.username} ({role}) of {org_code} created")


COMMANDS = (users_cli,)
