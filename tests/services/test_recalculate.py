"""Recalculation after a publish: changed awards are reversed and credited again under the new
version (history is never edited), what simulate said is what it writes, and running it again
or resuming it after an interruption changes nothing more."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Event, LedgerEntry, Member, PartnerMember
from app.services.boards.keys import board_key
from app.services.recalculate import recalculate
from app.services.rules import current_rules, publish, registry
from app.services.simulate import simulate

from ..jobs.test_jobs import run_queued_jobs
from ..partner_api import hazard, shift
from ..rules_support import changed_rules

TODAY = dt.date.today()
SINCE = TODAY - dt.timedelta(days=30)


@pytest.fixture
def doubled(app_ctx, tmp_path):
    yield changed_rules(tmp_path / "candidate")
    registry().reload()


def _activity(partner_api):
    partner_api.put_member("r2", name="李大明")
    for i in range(3):
        assert partner_api.post_event(shift(f"s{i}", days_ago=1 + i)).status_code == 201
    assert partner_api.post_event(hazard("h1", member="r2", days_ago=2)).status_code == 201
    assert partner_api.post_event(shift("t1", member="r2", days_ago=3)).status_code == 201


def _net_by_rule() -> dict:
    rows = db.session.execute(
        select(LedgerEntry.rule, func.sum(LedgerEntry.points))
        .where(LedgerEntry.kind.in_(["award", "reverse"]), LedgerEntry.rule.is_not(None))
        .group_by(LedgerEntry.rule)
    )
    return {rule: int(points) for rule, points in rows if points}


def _consistent() -> None:
    from app.services.audit import verify_ledger

    report = verify_ledger()
    assert report.ok and report.entries, report.problems  # every chain holds, balances match
    for member in db.session.scalars(select(Member)):
        db.session.refresh(member)
        total = db.session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                LedgerEntry.member_id == member.id
            )
        )
        assert member.balance == total


def test_publish_then_recalculate_writes_what_simulate_said(partner_api, rider, doubled):
    _activity(partner_api)
    current = current_rules()
    entries_before = db.session.scalar(select(func.count(LedgerEntry.id)))
    new = publish(str(doubled), "tester")
    db.session.commit()
    sim = simulate(current, new, SINCE, TODAY)
    report = recalculate(new, SINCE)
    assert (report.events, report.changed) == (5, 4)  # the four shifts; the hazard is unchanged
    assert (report.reversed_points, report.credited_points) == (60, 120)
    expected = {r["rule"]: r["after"] for r in sim.rules() if r["after"]}
    assert _net_by_rule() == expected
    # appended, never edited: each changed award has a reverse and a new award
    kinds = db.session.execute(
        select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind)
    ).all()
    assert dict(kinds)["reverse"] == 4 and entries_before + 8 == sum(n for _, n in kinds)
    assert {e.rules_version for e in db.session.scalars(select(Event))} == {new.version}
    r1 = db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == "r1"))
    assert db.session.get(Member, r1).balance == 90
    _consistent()


def test_running_it_again_changes_nothing(partner_api, rider, doubled):
    _activity(partner_api)
    new = publish(str(doubled), "tester")
    db.session.commit()
    recalculate(new, SINCE)
    count = db.session.scalar(select(func.count(LedgerEntry.id)))
    again = recalculate(new, SINCE)
    assert (again.members, again.events, again.changed) == (0, 0, 0)
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == count


def test_an_interrupted_run_resumes_without_double_counting(partner_api, rider, doubled,
                                                           monkeypatch):  # fmt: skip
    from app.services import recalculate as module

    _activity(partner_api)
    new = publish(str(doubled), "tester")
    db.session.commit()
    monkeypatch.setattr(module, "BATCH", 1)  # one member per transaction
    first = recalculate(new, SINCE, max_batches=1)  # stops after the first member
    assert first.members == 1
    rest = recalculate(new, SINCE)
    assert rest.members == 1 and first.changed + rest.changed == 4
    assert _net_by_rule()["sx:pioneer-shift"] == 120
    _consistent()


def test_the_command_publishes_and_recalculates(partner_api, rider, doubled, runner):
    _activity(partner_api)
    result = runner.invoke(args=["rules", "publish", str(doubled), "--recalculate-from",
                                 SINCE.isoformat()])  # fmt: skip
    assert result.exit_code == 0, result.output
    if "queued" in result.output:  # a real Redis: the job waits for a worker
        run_queued_jobs()
        db.session.expire_all()
    else:  # the embedded default runs it inline and says what it did
        assert "recalculated since" in result.output and "4 changed" in result.output
    assert _net_by_rule()["sx:pioneer-shift"] == 120


def _boards_then_rebuilt():
    """Every board now, and every board after a rebuild from the ledger."""
    from flask import current_app

    from app.redis_client import get_redis
    from app.services.boards.rebuild import rebuild_boards

    from .boards_support import all_boards

    client = get_redis()
    live = all_boards(client)
    rebuild_boards(client, current_app.config["APP_TIMEZONE"], check_drift=False)
    return live, all_boards(client)


def test_the_live_boards_take_the_corrections_a_rebuild_gives(partner_api, rider, doubled):
    _activity(partner_api)
    new = publish(str(doubled), "tester")
    db.session.commit()
    recalculate(new, SINCE)
    live, rebuilt = _boards_then_rebuilt()
    assert live == rebuilt
    r1 = db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == "r1"))
    assert dict(live[board_key("sx", "all", "total")])[str(r1)] // 1 == 90
    partner = [k for k in live if k.startswith("lb:{partner:") and k.endswith("|all|total}")]
    assert partner and dict(live[partner[0]])[str(r1)] // 1 == 90  # the partner's board too


def test_parts_share_the_members_and_the_boards_are_rebuilt_after(partner_api, rider, doubled,
                                                                  runner):  # fmt: skip
    _activity(partner_api)
    result = runner.invoke(args=["rules", "publish", str(doubled), "--recalculate-from",
                                 SINCE.isoformat(), "--parts", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    run_queued_jobs()
    db.session.expire_all()
    assert _net_by_rule()["sx:pioneer-shift"] == 120
    assert {e.rules_version for e in db.session.scalars(select(Event))} == {registry().current().version}  # fmt: skip
    _consistent()
    live, rebuilt = _boards_then_rebuilt()
    assert live == rebuilt  # the rebuild that followed the parts counted the corrections


def test_a_part_takes_only_its_share_of_the_members(partner_api, rider, doubled):
    _activity(partner_api)
    new = publish(str(doubled), "tester")
    db.session.commit()
    ids = sorted(db.session.scalars(select(Member.id)))
    first = recalculate(new, SINCE, part=(ids[0] % 2, 2), live_boards=False)
    assert first.members == 1
    second = recalculate(new, SINCE, part=(ids[1] % 2, 2), live_boards=False)
    assert second.members == 1 and first.changed + second.changed == 4
    assert _net_by_rule()["sx:pioneer-shift"] == 120
    _consistent()


def test_the_counters_end_as_the_replay_counts_them(partner_api, rider, doubled):
    from app.models import Counter, Emergency, Partner
    from app.services.members import facts_for
    from app.services.simulate import score_event

    _activity(partner_api)
    r1 = db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == "r1"))
    db.session.add(Counter(member_id=r1, bucket="gone:rule", period="2026-W01", points=5, count=1))
    db.session.commit()
    new = publish(str(doubled), "tester")
    db.session.commit()
    recalculate(new, SINCE)
    stored = {(c.member_id, c.bucket, c.period): (c.points, c.count)
              for c in db.session.scalars(select(Counter))}  # fmt: skip
    expected = {}
    partners = dict(db.session.execute(select(Partner.id, Partner.code)).all())
    emergencies = list(db.session.scalars(select(Emergency)))
    facts = facts_for(db.session.scalars(select(Member.id)))
    for member_id, member_facts in facts.items():
        counters: dict = {}
        for event in db.session.scalars(
            select(Event).where(Event.member_id == member_id).order_by(Event.occurred_at, Event.id)
        ):
            score_event(new, event, member_facts, counters, emergencies,
                        partners[event.partner_id])  # fmt: skip
        expected |= {(member_id, b, p): tuple(v) for (b, p), v in counters.items()}
    assert stored == expected and (r1, "gone:rule", "2026-W01") not in stored
    assert any(b.startswith("sx:pioneer-shift") for _, b, _ in stored)  # the doubled rule's caps
