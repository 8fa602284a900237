"""Command-line interface for what points turn into (rewards, points expiry, badges) and for
the rider pages (a member's login link) and a member's personal data (erasure)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

rewards_cli = AppGroup("rewards", help="Rewards: expire unclaimed redemptions, sponsors' spend.")
points_cli = AppGroup("points", help="Points: expiry.")
badges_cli = AppGroup("badges", help="Badges: re-evaluate, grant rank badges.")


def _queued(job) -> None:
    click.echo(f"job {job.id} queued; see: flask --app app jobs {job.id}")


@rewards_cli.command("expire")
@click.option("--queue", "queued", is_flag=True, help="Run it on a worker; print the job id.")
def rewards_expire(queued: bool) -> None:
    """Refund every pending redemption past its pickup time."""
    from .jobs import enqueue
    from .jobs.rewards import expire_redemptions_job

    if queued:
        return _queued(enqueue(expire_redemptions_job, description="expire redemptions"))
    click.echo(f"expired and refunded: {expire_redemptions_job()['expired']} redemption(s)")


@rewards_cli.command("spend")
@click.argument("org")
@click.option("--period", help="Only this period key, e.g. month:2026-11.")
def rewards_spend(org: str, period: str | None) -> None:
    """What each sponsor of rewards at ORG and below has paid for, by period."""
    from .services.rewards import sponsor_spend
    from .services.rules import current_rules

    rows = sponsor_spend(current_rules(), org, period)
    if not rows:
        click.echo(f"no sponsored redemptions at {org}")
    for r in rows:
        click.echo(f"{r['sponsor']}\t{r['period']}\t{r['redemptions']} redemption(s)\t"
                   f"{r['points']} points\t{r['yuan']:.2f} yuan")  # fmt: skip


@points_cli.command("expire")
@click.option("--queue", "queued", is_flag=True, help="Run it on a worker; print the job id.")
def points_expire(queued: bool) -> None:
    """Write the expire entries due now under each tree's expiry policy."""
    from .jobs import enqueue
    from .jobs.rewards import expire_points_job

    if queued:
        return _queued(enqueue(expire_points_job, description="expire points", timeout=14400))
    r = expire_points_job()
    click.echo(f"looked at {r['members']} member(s) with points; "
               f"{r['points']} point(s) of {r['expired_members']} member(s) expired")  # fmt: skip


@badges_cli.command("recheck")
@click.option("--member", "members", multiple=True, type=int, help="Only this member id.")
@click.option("--queue", "queued", is_flag=True, help="Run it on a worker; print the job id.")
def badges_recheck(members: tuple, queued: bool) -> None:
    """Recompute members' progress from their events and ledger; grant missing badges,
    withdraw those no longer earned (reversing their bonus), raise levels."""
    from .jobs.rewards import enqueue_recheck, recheck_badges_job

    ids = list(members) or None
    if queued:
        return _queued(enqueue_recheck(ids))
    r = recheck_badges_job(ids)
    click.echo(f"rechecked {r['members']} member(s): {r['granted']} grant(s) made, "
               f"{r['revoked']} withdrawn, {r['levels']} level change(s)")  # fmt: skip


@badges_cli.command("close")
def badges_close() -> None:
    """Grant the rank badges of archived periods that have not had them."""
    from .extensions import db
    from .services.honours import close_badges
    from .services.rules import current_rules

    for r in close_badges(current_rules()):
        click.echo(f"{r['period']}: {r['granted']} rank badge(s) granted")
    db.session.commit()


members_cli = AppGroup("members", help="Members: a login link to their pages, erasure.")


@members_cli.command("login-link")
@click.argument("ref")
@click.option("--partner", "partner_code", default="demo", show_default=True,
              help="The partner that knows the member as REF.")  # fmt: skip
@click.option("--base-url", default="http://127.0.0.1:5000", show_default=True,
              help="Where the service is reached.")  # fmt: skip
def members_login_link(ref: str, partner_code: str, base_url: str) -> None:
    """Print a single-use link that opens member REF's own pages (valid LOGIN_LINK_SECONDS)."""
    from flask import current_app
    from sqlalchemy import select

    from .errors import AppError
    from .extensions import db
    from .models import Partner
    from .services.members import find_member
    from .web.auth import issue_link

    partner = db.session.scalar(select(Partner).where(Partner.code == partner_code))
    if partner is None:
        raise click.ClickException(f"no partner {partner_code!r}")
    try:
        member = find_member(partner, ref)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    with current_app.test_request_context(base_url=base_url):
        url, expires = issue_link(partner, member)
    db.session.commit()
    click.echo(url)
    click.echo(f"valid until {expires.isoformat(timespec='seconds')}, once", err=True)


@members_cli.command("erase")
@click.argument("who")
@click.option("--partner", "partner_code",
              help="WHO is this partner's reference to the member; without it, WHO is the "
                   "member's id.")  # fmt: skip
@click.option("--reason", required=True, help="Why (no name or phone): kept in the audit log.")
@click.confirmation_option(prompt="Erase this member's personal data? It cannot be undone")
def members_erase(who: str, partner_code: str | None, reason: str) -> None:
    """Erase a member's personal data on their request: name, phone, partners' references,
    appeal texts, login links, certificates. Points, ledger, badges and board places stay,
    under the name 匿名. Erasing a member erased before changes nothing."""
    from sqlalchemy import select

    from .errors import AppError
    from .extensions import db
    from .models import Partner
    from .services.erasure import erase_member
    from .services.members import find_member

    try:
        if partner_code:
            partner = db.session.scalar(select(Partner).where(Partner.code == partner_code))
            if partner is None:
                raise click.ClickException(f"no partner {partner_code!r}")
            member_id = find_member(partner, who).id
        elif who.isdigit():
            member_id = int(who)
        else:
            raise click.ClickException(f"{who!r} is not a member id; a reference needs --partner")
        done = erase_member(member_id, actor=None, reason=reason)
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    if done.already:
        when = done.erased_at.isoformat(timespec="seconds")
        click.echo(f"member {done.member_id} was erased before ({when}); nothing changed")
        return
    db.session.commit()
    counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in done.counts().items())
    click.echo(f"member {done.member_id}: personal data erased ({counts})")


COMMANDS = (rewards_cli, points_cli, badges_cli, members_cli)
