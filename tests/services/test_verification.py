"""Verification: approving a pending event awards what waited for it, once, with its badges
and boards; rejecting records the reason; nobody decides outside their subtree."""

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Event, LedgerEntry, Member
from app.services import verification
from app.services.rules import current_rules

from ..factories import ConsoleUserFactory
from ..partner_api import volunteer


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
