"""Appeals (诉求): a rider asks the organisation about a ledger line, about an event, or about
an activity that earned nothing; the organisation answers (the console, issue #7); the rider
says whether the answer resolved it.

Everything here is scoped to one member: a line, an event or an appeal is found only among
that member's own, so an id from a URL or a form never reaches someone else's data. Writers
flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import or_, select, update

from ..errors import Conflict, Invalid
from ..extensions import db
from ..models import Appeal, AppealStatus, Event, LedgerEntry, Member
from ..models.base import utcnow

NOTE_MIN, NOTE_MAX = 5, 500
LIST_LIMIT = 100  # a rider raises a handful; the list shows the newest this many

# an appeal the organisation still has to answer, or the rider to judge: a second one about
# the same line would only be a duplicate
UNFINISHED = (AppealStatus.OPEN, AppealStatus.ASSIGNED, AppealStatus.ANSWERED,
              AppealStatus.REOPENED)  # fmt: skip


class AppealKind(StrEnum):
    POINTS = "points"  # the points of a line look wrong
    MISSING = "missing"  # an activity earned nothing, or never showed up
    OTHER = "other"


KINDS = frozenset(k.value for k in AppealKind)


def own_entry(member_id: int, entry_id: int) -> LedgerEntry | None:
    return db.session.scalar(
        select(LedgerEntry).where(LedgerEntry.id == entry_id, LedgerEntry.member_id == member_id)
    )


def own_event(member_id: int, event_id: int) -> Event | None:
    return db.session.scalar(
        select(Event).where(Event.id == event_id, Event.member_id == member_id)
    )


def own_appeal(member_id: int, appeal_id: int) -> Appeal | None:
    return db.session.scalar(
        select(Appeal).where(Appeal.id == appeal_id, Appeal.member_id == member_id)
    )


def appeals_of(member_id: int, limit: int = LIST_LIMIT) -> list[Appeal]:
    """The member's appeals, newest first (``ix_appeals_member``)."""
    return list(
        db.session.scalars(
            select(Appeal)
            .where(Appeal.member_id == member_id)
            .order_by(Appeal.created_at.desc(), Appeal.id.desc())
            .limit(limit)
        )
    )


def unfinished_about(
    member_id: int, entry: LedgerEntry | None = None, event: Event | None = None
) -> Appeal | None:
    """The member's unfinished appeal about this line, its event, or this event, if any."""
    about = []
    if entry is not None:
        about.append(Appeal.ledger_entry_id == entry.id)
        if entry.event_id is not None:
            about.append(Appeal.event_id == entry.event_id)
    if event is not None:
        about.append(Appeal.event_id == event.id)
    if not about:
        return None
    return db.session.scalar(
        select(Appeal)
        .where(Appeal.member_id == member_id, Appeal.status.in_(UNFINISHED), or_(*about))
        .limit(1)
    )


def check(kind: str, note: str) -> tuple[AppealKind, str]:
    """The kind and the trimmed note, or ``Invalid`` whose ``details`` name each bad field:
    ``{"kind": "unknown"}``, ``{"note": "short" | "long"}``."""
    problems = {}
    note = (note or "").strip()
    if kind not in KINDS:
        problems["kind"] = "unknown"
    if len(note) < NOTE_MIN:
        problems["note"] = "short"
    elif len(note) > NOTE_MAX:
        problems["note"] = "long"
    if problems:
        raise Invalid("the appeal is not complete", details=problems)
    return AppealKind(kind), note


def raise_appeal(
    member: Member,
    kind: str,
    note: str,
    entry: LedgerEntry | None = None,
    event: Event | None = None,
    now: dt.datetime | None = None,
) -> Appeal:
    """Record a new appeal of ``member`` about ``entry`` (and its event) or ``event`` (the
    member's own: the caller found them with ``own_entry``/``own_event``), or about nothing in
    particular.

    It goes to the organisation where the activity happened, else the member's primary one.
    ``Invalid`` for a bad kind or note; ``Conflict`` (details: the appeal's id) when an
    unfinished appeal about the same line or event exists."""
    kind_, note = check(kind, note)
    existing = unfinished_about(member.id, entry, event)
    if existing is not None:
        raise Conflict("an appeal about this is open", {"appeal": existing.id}, "appeal_open")
    about = entry if entry is not None else event
    now = now or utcnow()
    appeal = Appeal(
        member_id=member.id,
        org_code=about.org_code if about is not None else member.primary_org.code,
        ledger_entry_id=entry.id if entry is not None else None,
        event_id=entry.event_id if entry is not None else event.id if event is not None else None,
        kind=str(kind_),
        note=note,
        status=AppealStatus.OPEN,
        created_at=now,
        updated_at=now,
    )
    db.session.add(appeal)
    db.session.flush()
    return appeal


def give_feedback(appeal: Appeal, resolved: bool, now: dt.datetime | None = None) -> None:
    """The rider's say on the organisation's answer: ``resolved`` closes the appeal, otherwise
    it goes back to the organisation. ``Conflict`` unless the appeal is answered (and still
    is: the update is conditional, so a second click or the console's change wins cleanly)."""
    now = now or utcnow()
    done = db.session.execute(
        update(Appeal)
        .where(Appeal.id == appeal.id, Appeal.status == AppealStatus.ANSWERED)
        .values(
            resolved=resolved,
            feedback_at=now,
            status=AppealStatus.RESOLVED if resolved else AppealStatus.REOPENED,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise Conflict("the appeal is not waiting for feedback", code="not_answered")
    db.session.expire(appeal)
