"""Verification: approving a pending event awards what waited for it, once, with its badges
and boards; rejecting records the reason; nobody decides outside their subtree."""

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Event, LedgerEntry, Member
from app.services import verification
from app.services.rules import current_rules

from ..factories import ConsoleUserFactory
from ..partner_api import volunteer
from ..rules_support import changed_rules


def _pending(partner_api, event_id: str = "v1", **kwargs) -> Event:
    response = partner_api.post_event(volunteer(event_id, **kwargs))
    assert response.status_code == 201 and response.json["status"] == "pending", response.json
    return db.session.scalar(select(Event).where(Event.partner_event_id == event_id))


def _ledger_sum(member_id: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.member_id == member_id
        )
    )


def test_approving_awards_the_points_that_waited_with_an_explanation(partner_api, rider):
    event = _pending(partner_api)
    member = db.session.get(Member, event.member_id)
    before = member.balance
    user = ConsoleUserFactory(org_code="sx.dt", role="verifier")
    decision = verification.approve(current_rules(), user, [event.id])
    db.session.commit()
    assert decision.decided == [event.id] and decision.points > 0
    db.session.refresh(event)
    db.session.refresh(member)
    assert event.status == "awarded" and event.decided_at is not None
    assert member.balance == before + decision.points == _ledger_sum(member.id)
    entry = db.session.scalar(
        select(LedgerEntry).where(LedgerEntry.event_id == event.id, LedgerEntry.kind == "award")
    )
    assert entry.reason.endswith("（已确认）") and entry.explanation["confirmed"] is True
    assert member.progress["sum"]["volunteer.hours|hours"] == 4  # it counts towards badges now
    (note,) = db.session.scalars(select(AuditEntry))
    assert (note.action, note.target, note.username) == (
        "event.approve",
        f"event:{event.id}",
        user.username,
    )
    # a second approval finds nothing pending: nothing more is written
    again = verification.approve(current_rules(), user, [event.id])
    db.session.commit()
    assert again.decided == [] and again.skipped == [event.id]
    assert _ledger_sum(member.id) == member.balance


def test_rejecting_keeps_the_ledger_and_records_the_reason(partner_api, rider):
    event = _pending(partner_api)
    total = _ledger_sum(event.member_id)
    user = ConsoleUserFactory(org_code="sx.dt.pingcheng", role="verifier")
    decision = verification.reject(user, [event.id], "  签到表上没有这次服务  ")
    db.session.commit()
    assert decision.decided == [event.id]
    db.session.refresh(event)
    assert (event.status, event.reason) == ("rejected", "签到表上没有这次服务")
    assert _ledger_sum(event.member_id) == total
    assert verification.approve(current_rules(), user, [event.id]).decided == []


def test_nobody_decides_outside_their_subtree(partner_api, rider):
    event = _pending(partner_api)  # at the members' home, sx.dt.pingcheng
    outsider = ConsoleUserFactory(org_code="sx.ty", role="admin")
    assert verification.pending(outsider) == []
    assert verification.approve(current_rules(), outsider, [event.id]).skipped == [event.id]
    assert verification.reject(outsider, [event.id], "no").skipped == [event.id]
    db.session.commit()
    db.session.refresh(event)
    assert event.status == "pending"
    insider = ConsoleUserFactory(org_code="sx.dt", role="verifier")
    assert [e.id for e in verification.pending(insider)] == [event.id]


def test_a_bulk_approval_decides_each_pending_event_once(partner_api, rider):
    events = [_pending(partner_api, f"v{i}", days_ago=1 + i) for i in range(3)]
    user = ConsoleUserFactory(org_code="sx", role="admin")
    verification.reject(user, [events[0].id], "重复")
    decision = verification.approve(current_rules(), user, [e.id for e in events])
    db.session.commit()
    assert decision.decided == [events[1].id, events[2].id]
    assert decision.skipped == [events[0].id]
    member = db.session.get(Member, events[0].member_id)
    db.session.refresh(member)
    assert member.balance == _ledger_sum(member.id)


def test_an_organisation_code_with_a_wildcard_character_sees_only_its_own_subtree(
    partner_api, rider
):
    _pending(partner_api)  # at sx.dt.pingcheng
    # "_" matches any one character in SQL LIKE: unescaped, sx.d_ would reach sx.dt
    assert verification.pending(ConsoleUserFactory(org_code="sx.d_")) == []
    assert len(verification.pending(ConsoleUserFactory(org_code="sx.dt"))) == 1


def test_approval_scores_under_the_version_the_event_arrived_under(partner_api, rider, tmp_path):
    from app.services.rules import publish, registry

    from ..conftest import ROOT

    try:
        first = publish(str(ROOT / "rules"), "tester")  # the shipped rules, now stored
        db.session.commit()
        event = _pending(partner_api, hours=4)
        assert event.rules_version == first.version
        doubled = changed_rules(tmp_path / "doubled", "points: 4 * event.data.hours",
                                "points: 8 * event.data.hours")  # volunteer hours  # fmt: skip
        second = publish(str(doubled), "tester")
        db.session.commit()
        assert current_rules().version == second.version != first.version
        user = ConsoleUserFactory(org_code="sx.dt", role="verifier")
        decision = verification.approve(current_rules(), user, [event.id])
        db.session.commit()
        award = db.session.scalar(
            select(LedgerEntry).where(LedgerEntry.event_id == event.id, LedgerEntry.kind == "award",
                                      LedgerEntry.rule == "sx:volunteer-hours")
        )  # fmt: skip
        # 4 h at the 4 a hour in force when it happened, not the 8 published since
        assert award.points == 16 and award.rules_version == first.version
        versions = set(db.session.scalars(
            select(LedgerEntry.rules_version).where(LedgerEntry.event_id == event.id)))  # fmt: skip
        assert versions == {first.version}
        assert decision.points == _ledger_sum(event.member_id)
        # one that arrived under the new version is scored under it
        later = _pending(partner_api, "v2", hours=4, days_ago=2)
        assert later.rules_version == second.version
        verification.approve(current_rules(), user, [later.id])
        db.session.commit()
        assert db.session.scalar(
            select(LedgerEntry.points).where(LedgerEntry.event_id == later.id,
                                             LedgerEntry.rule == "sx:volunteer-hours")
        ) == 32  # fmt: skip
    finally:
        registry().reload()
