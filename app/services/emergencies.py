"""Emergencies (平急转换): an organisation declares one for its region, or a region below it,
and ends it early; while one is in force, the rules' emergency multipliers and emergency-only
rules apply to events in that region.

Each change is audited, and the ingest's per-process emergency cache is cleared when the
transaction commits, so the change applies at once in this process (other processes within
``EMERGENCY_CACHE_SECONDS``). Writers flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import ConsoleUser, Emergency, Organisation
from ..models.base import utcnow
from .console_users import audit, in_scope, in_subtree
from .ingest import clear_emergency_cache

NAME_MIN, NAME_MAX = 2, 100
LIST_LIMIT = 200
# the kinds rules can test (``context.emergency_kind``): rules/sx.ty.yaml and rules/sx.dt.yaml
# name flood and snowstorm
KINDS = ("flood", "snowstorm", "epidemic", "earthquake", "fire", "heat", "other")
_CLEAR = "pioneer.emergencies.clear"


class EmergencyState(StrEnum):
    PLANNED = "planned"  # declared, not started yet
    IN_FORCE = "in_force"
    ENDED = "ended"  # ended early, or its planned end has passed


def state(emergency: Emergency, now: dt.datetime) -> EmergencyState:
    if emergency.in_force(now):
        return EmergencyState.IN_FORCE
    end = emergency.ended_at or emergency.planned_end_at
    if end is not None and end <= now:
        return EmergencyState.ENDED
    return EmergencyState.PLANNED


def _subtree(user: ConsoleUser, column):
    return in_subtree(column, user.org_code)


def of_subtree(user: ConsoleUser, limit: int = LIST_LIMIT) -> list[Emergency]:
    """The emergencies declared in the user's subtree, the latest start first."""
    return list(
        db.session.scalars(
            select(Emergency)
            .where(_subtree(user, Emergency.org_code))
            .order_by(Emergency.starts_at.desc(), Emergency.id.desc())
            .limit(limit)
        )
    )


def regions(user: ConsoleUser, limit: int = 200) -> list[Organisation]:
    """Organisations of the user's subtree an emergency may be declared for, the highest
    first (a region is usually a city or a district, rarely a station)."""
    return list(
        db.session.scalars(
            select(Organisation)
            .where(_subtree(user, Organisation.code))
            .order_by(Organisation.depth, Organisation.code)
            .limit(limit)
        )
    )


def check(user: ConsoleUser, org_code: str, name: str, kind: str,
          starts_at: dt.datetime | None, planned_end_at: dt.datetime | None,
          now: dt.datetime) -> tuple[str, str]:  # fmt: skip
    """The trimmed organisation code and name, or ``Invalid`` whose ``details`` name each bad
    field: org ``outside``, name ``short``/``long``, kind ``unknown``, starts_at ``missing``,
    planned_end_at ``missing``/``before_start``/``past``."""
    problems = {}
    org_code, name = (org_code or "").strip(), (name or "").strip()
    exists = db.session.scalar(select(Organisation.id).where(Organisation.code == org_code))
    if not in_scope(user, org_code) or exists is None:
        problems["org"] = "outside"
    if len(name) < NAME_MIN:
        problems["name"] = "short"
    elif len(name) > NAME_MAX:
        problems["name"] = "long"
    if kind not in KINDS:
        problems["kind"] = "unknown"
    if starts_at is None:
        problems["starts_at"] = "missing"
    if planned_end_at is None:
        problems["planned_end_at"] = "missing"
    elif starts_at is not None and planned_end_at <= starts_at:
        problems["planned_end_at"] = "before_start"
    elif planned_end_at <= now:
        problems["planned_end_at"] = "past"
    if problems:
        raise Invalid("the emergency is not complete", details=problems)
    return org_code, name


def declare(user: ConsoleUser, org_code: str, name: str, kind: str,
            starts_at: dt.datetime | None, planned_end_at: dt.datetime | None,
            now: dt.datetime | None = None) -> Emergency:  # fmt: skip
    """Declare an emergency for ``org_code`` (the user's organisation or one below it).

    A planned end is required, so a forgotten emergency does not multiply points for ever;
    the start may lie in the past (events of that time reported late then count for more).
    ``Invalid`` (see ``check``) writes nothing."""
    now = now or utcnow()
    org_code, name = check(user, org_code, name, kind, starts_at, planned_end_at, now)
    emergency = Emergency(org_code=org_code, name=name, kind=kind, starts_at=starts_at,
                          planned_end_at=planned_end_at, created_at=now)  # fmt: skip
    db.session.add(emergency)
    db.session.flush()
    audit(user, org_code, "emergency.declare", f"emergency:{emergency.id}", None,
          {"name": name, "kind": kind, "starts_at": starts_at.isoformat(),
           "planned_end_at": planned_end_at.isoformat()})  # fmt: skip
    _clear_cache_after_commit()
    return emergency


def get(user: ConsoleUser, emergency_id: int) -> Emergency | None:
    """The emergency with this id if it is in the user's subtree, else None."""
    found = db.session.get(Emergency, emergency_id)
    return found if found is not None and in_scope(user, found.org_code) else None


def end(user: ConsoleUser, emergency_id: int, now: dt.datetime | None = None) -> Emergency:
    """End an emergency now (a planned one is thereby called off).

    ``NotFound`` outside the user's subtree; ``Conflict`` when it has already ended (the
    update is conditional: of two staff ending it at once, one does)."""
    now = now or utcnow()
    emergency = get(user, emergency_id)
    if emergency is None:
        raise NotFound("no such emergency", {"emergency": emergency_id})
    if state(emergency, now) == EmergencyState.ENDED:
        raise Conflict("the emergency has ended", code="ended")
    done = db.session.execute(
        update(Emergency)
        .where(Emergency.id == emergency.id, Emergency.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise Conflict("the emergency has ended", code="ended")
    db.session.expire(emergency)
    audit(user, emergency.org_code, "emergency.end", f"emergency:{emergency.id}",
          {"ended_at": None}, {"ended_at": now.isoformat()})  # fmt: skip
    _clear_cache_after_commit()
    return emergency


def _clear_cache_after_commit() -> None:
    """Clear the ingest's emergency cache once this transaction commits: cleared before, a
    request of this process could load the old state again and keep it for a while."""
    session = db.session()
    if session.info.get(_CLEAR):
        return
    session.info[_CLEAR] = True
    app = current_app._get_current_object()

    def after_commit(sess):
        sess.info.pop(_CLEAR, None)
        with app.app_context():
            clear_emergency_cache()

    def after_rollback(sess):
        sess.info.pop(_CLEAR, None)

    sa_event.listen(session, "after_commit", after_commit, once=True)
    sa_event.listen(session, "after_rollback", after_rollback, once=True)
