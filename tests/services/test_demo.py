"""The demo seed: members, events and a consistent ledger, idempotent, and its command."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select

from app.extensions import db
from app.models import Event, LedgerEntry, Member, Organisation, PartnerMember
from app.models.base import utcnow
from app.services.demo import demo_member_ids, seed_demo
from app.services.partners import KEY_PATTERN

SMALL = {"weeks": 1, "members_per_station": 2}


def _counts() -> dict[str, int]:
    return {
        name: db.session.scalar(select(func.count()).select_from(model))
        for name, model in (
            ("orgs", Organisation),
            ("members", Member),
            ("refs", PartnerMember),
            ("events", Event),
            ("ledger", LedgerEntry),
        )
    }


def test_seed_creates_members_events_and_a_consistent_ledger(app_ctx):
    now = utcnow()
    result = seed_demo(**SMALL, now=now)
    db.session.commit()

    assert result.events_refused == 0, result.refusals
    assert KEY_PATTERN.fullmatch(result.key)
    counts = _counts()
    assert result.members == counts["members"] == counts["refs"] >= 10
    assert result.orgs_created == counts["orgs"]
    assert db.session.scalar(select(Organisation).where(Organisation.code == "sx")).kind == (
        "province"
    )
    assert result.events_posted == counts["events"] > 0
    assert counts["ledger"] > 0
    assert result.points_awarded == db.session.scalar(select(func.sum(LedgerEntry.points))) > 0

    events = db.session.scalars(select(Event)).all()
    assert {e.type for e in events} >= {"pioneer.shift", "governance.hazard_report"}
    horizon = dt.timedelta(days=app_ctx.config["EVENT_HORIZON_DAYS"])
    assert all(now - horizon < e.occurred_at <= now for e in events)
    assert all(e.span_end <= now for e in events if e.span_end is not None)
    assert not any(e.status == "duplicate" for e in events)  # no overlapping shifts

    sums = dict(
        db.session.execute(
            select(LedgerEntry.member_id, func.sum(LedgerEntry.points)).group_by(
                LedgerEntry.member_id
            )
        ).all()
    )
    for member in db.session.scalars(select(Member)):
        assert member.balance == sums.get(member.id, 0), member.display_name
        assert member.lifetime_points == member.balance  # only awards so far
    assert sorted(demo_member_ids()) == sorted(m.id for m in db.session.scalars(select(Member)))


def test_seed_twice_adds_nothing_but_a_key(app_ctx):
    now = utcnow()
    first = seed_demo(**SMALL, now=now)
    db.session.commit()
    before = _counts()
    balances = dict(db.session.execute(select(Member.id, Member.balance)).all())

    second = seed_demo(**SMALL, now=now)
    db.session.commit()

    assert _counts() == before
    assert dict(db.session.execute(select(Member.id, Member.balance)).all()) == balances
    assert (second.orgs_created, second.members_created, second.events_posted) == (0, 0, 0)
    assert second.events_replayed == first.events_posted
    assert second.points_awarded == 0 and second.events_refused == 0
    assert second.key != first.key and KEY_PATTERN.fullmatch(second.key)


def test_the_key_reads_a_demo_member(app_ctx):
    result = seed_demo(**SMALL)
    db.session.commit()
    member = db.session.scalar(
        select(Member).join(PartnerMember).where(PartnerMember.ref == result.sample_ref)
    )
    response = app_ctx.test_client().get(
        f"/api/v1/members/{result.sample_ref}",
        headers={"Authorization": f"Bearer {result.key}"},
    )
    assert response.status_code == 200, response.json
    assert response.json["balance"] == member.balance
    assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", response.json["name"])


def test_demo_seed_command_prints_the_key_last(app_ctx):
    runner = app_ctx.test_cli_runner()
    result = runner.invoke(args=["demo", "seed", "--weeks", "1", "--members-per-station", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("demo: ")
    assert re.fullmatch(r"pp_[0-9a-f]+_[A-Za-z0-9_-]+", lines[-1])
    again = runner.invoke(args=["demo", "seed", "--weeks", "1", "--members-per-station", "1"])
    assert again.exit_code == 0, again.output
    assert "0 events posted" in again.stdout
    assert again.stdout.strip().splitlines()[-1] != lines[-1]
