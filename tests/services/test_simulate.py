"""Simulating a candidate rule set: the same rules change nothing; a changed rule shows its
change per rule, per member and on the boards; confirmed events count as confirmed; nothing is
written."""

import datetime as dt
import shutil

from sqlalchemy import func, select

from app.engine import load_rules
from app.extensions import db
from app.models import Event, LedgerEntry, PartnerMember
from app.services import verification
from app.services.rules import current_rules
from app.services.simulate import simulate

from ..conftest import ROOT
from ..factories import ConsoleUserFactory
from ..partner_api import hazard, shift, volunteer
from ..rules_support import changed_rules

TODAY = dt.date.today()
START = TODAY - dt.timedelta(days=30)


def _activity(partner_api):
    partner_api.put_member("r2", name="李大明")
    for i in range(3):
        assert partner_api.post_event(shift(f"s{i}", days_ago=1 + i)).status_code == 201
    assert partner_api.post_event(hazard("h1", member="r2", days_ago=2)).status_code == 201
    assert partner_api.post_event(shift("t1", member="r2", days_ago=3)).status_code == 201


def _doubled_shifts(tmp_path):
    return load_rules(changed_rules(tmp_path / "candidate"), "Asia/Shanghai")


def _ledger() -> tuple:
    return db.session.execute(
        select(func.count(LedgerEntry.id), func.coalesce(func.sum(LedgerEntry.points), 0))
    ).one()


def test_the_rules_in_force_change_nothing(partner_api, rider):
    _activity(partner_api)
    sim = simulate(current_rules(), current_rules(), START, TODAY)
    assert sim.events == 5
    assert sim.before == sim.after == 3 * 15 + 10 + 15
    assert all(r["before"] == r["after"] for r in sim.rules())
    assert sim.members == [] and sim.boards == []


def test_a_doubled_rule_shows_per_rule_per_member_and_on_the_boards(partner_api, rider, tmp_path):
    _activity(partner_api)
    before_ledger = _ledger()
    sim = simulate(current_rules(), _doubled_shifts(tmp_path), START, TODAY)
    rules = {r["rule"]: (r["before"], r["after"]) for r in sim.rules()}
    assert rules["sx:pioneer-shift"] == (60, 120)
    assert rules["sx:hazard-report"] == (10, 10)
    r1, r2 = (
        db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == ref))
        for ref in ("r1", "r2")
    )
    assert sim.members == [
        {"member_id": r1, "before": 45, "after": 90, "change": 45},
        {"member_id": r2, "before": 25, "after": 40, "change": 15},
    ]
    # r1 leads either way; the boards' order does not change, so none is reported
    assert sim.boards == []
    assert _ledger() == before_ledger  # nothing written


def test_a_changed_order_is_reported_on_the_boards(partner_api, rider, tmp_path):
    partner_api.put_member("r2", name="李大明")
    partner_api.post_event(shift("s1", days_ago=1, hours=1))  # r1: 5 points
    partner_api.post_event(hazard("h1", member="r2", days_ago=1))  # r2: 10 points
    candidate = _doubled_shifts(tmp_path)
    sim = simulate(current_rules(), candidate, START, TODAY)
    assert sim.members[0]["change"] == 5
    scopes = {b["scope"] for b in sim.boards}
    assert "sx" in scopes and "sx.dt.pingcheng" in scopes
    sx = next(b for b in sim.boards if b["scope"] == "sx")
    assert [p for _, p in sx["before"]] == [10, 5] and [p for _, p in sx["after"]] == [10, 10]


def test_confirmed_events_count_as_confirmed_and_pending_ones_do_not(partner_api, rider):
    partner_api.post_event(volunteer("v1", days_ago=1))
    partner_api.post_event(volunteer("v2", days_ago=2))
    first = db.session.scalar(select(Event).where(Event.partner_event_id == "v1"))
    verification.approve(current_rules(), ConsoleUserFactory(org_code="sx"), [first.id])
    db.session.commit()
    sim = simulate(current_rules(), current_rules(), START, TODAY)
    rules = {r["rule"]: (r["before"], r["after"]) for r in sim.rules()}
    assert rules["sx:volunteer-hours"] == (16, 16)  # v1's 4 hours, confirmed; v2 waits


def test_the_command_prints_the_report(partner_api, rider, tmp_path, runner):
    _activity(partner_api)
    _doubled_shifts(tmp_path)
    result = runner.invoke(args=["rules", "simulate", "--rules", str(tmp_path / "candidate"),
                                 "--from", START.isoformat(), "--to", TODAY.isoformat()])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5 events from" in result.output and "(+60)" in result.output
    assert "sx:pioneer-shift: 60 -> 120 (+60)" in result.output
    broken = tmp_path / "broken"
    shutil.copytree(ROOT / "rules", broken)
    (broken / "sx.yaml").write_text("org: sx\nrules: [", encoding="utf-8")
    refused = runner.invoke(args=["rules", "simulate", "--rules", str(broken), "--from",
                                  START.isoformat(), "--to", TODAY.isoformat()])  # fmt: skip
    assert refused.exit_code != 0 and "sx.yaml:" in refused.output
