"""Handling appeals (诉求) in the console: the organisation's half of the closed loop (the
rider's half is ``services.appeals``).

An appeal is seen by the staff of its organisation and of the organisations above it. They
assign it (to themselves or to a colleague who can see it), answer it, pass it up to the parent
organisation, and archive it once it is answered or resolved; the rider says in between
whether an answer resolved it, and a reopened appeal comes back to the organisation.

Every change is one conditional UPDATE on the status (and organisation) the change starts
from: of two staff acting at once, one wins and the other gets ``Conflict``; nothing is lost
silently. Each change is audited. Writers flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, select, update

from ..engine.ruleset import ancestors
from ..errors import Conflict, Invalid
from ..extensions import db
from ..models import Appeal, AppealStatus, ConsoleUser, Organisation, Role
from ..models.base import utcnow
from .console_users import CAN, audit, in_scope, in_subtree

ANSWER_MIN, ANSWER_MAX = 5, 2000
LIST_LIMIT = 200

# where each change may start from
HANDLING = (AppealStatus.OPEN, AppealStatus.ASSIGNED, AppealStatus.REOPENED)
ARCHIVABLE = (AppealStatus.ANSWERED, AppealStatus.RESOLVED)
# reopened first (the rider said the answer did not help), then what waits for the
# organisation, then what waits for the rider, then what is finished
_ORDER = case(
    (Appeal.status == AppealStatus.REOPENED, 0),
    (Appeal.status.in_((AppealStatus.OPEN, AppealStatus.ASSIGNED)), 1),
    (Appeal.status == AppealStatus.ANSWERED, 2),
    (Appeal.status == AppealStatus.RESOLVED, 3),
    else_=4,
)


def _subtree(user: ConsoleUser):
    return in_subtree(Appeal.org_code, user.org_code)


def listing(user: ConsoleUser, status: str | None = None, limit: int = LIST_LIMIT) -> list[Appeal]:
    """Appeals of the user's subtree: with ``status``, those in it; without, all but the
    archived. Reopened ones first, then the oldest first."""
    query = select(Appeal).where(_subtree(user))
    if status:
        query = query.where(Appeal.status == status)
    else:
        query = query.where(Appeal.status != AppealStatus.ARCHIVED)
    return list(
        db.session.scalars(query.order_by(_ORDER, Appeal.created_at, Appeal.id).limit(limit))
    )


def get(user: ConsoleUser, appeal_id: int) -> Appeal | None:
    """The appeal with this id if it is in the user's subtree, else None."""
    found = db.session.get(Appeal, appeal_id)
    return found if found is not None and in_scope(user, found.org_code) else None


def age_days(appeal: Appeal, now: dt.datetime | None = None) -> int:
    return max(((now or utcnow()) - appeal.created_at).days, 0)


def assignees(user: ConsoleUser, appeal: Appeal) -> list[ConsoleUser]:
    """Who in the user's subtree may be given this appeal: active users whose role handles
    appeals and who can see it (their organisation is the appeal's or one above it)."""
    handling = [r.value for r in Role if "appeals" in CAN[r]]
    orgs = [o for o in ancestors(appeal.org_code) if in_scope(user, o)]
    return list(
        db.session.scalars(
            select(ConsoleUser)
            .where(
                ConsoleUser.org_code.in_(orgs),
                ConsoleUser.role.in_(handling),
                ConsoleUser.disabled_at.is_(None),
            )
            .order_by(ConsoleUser.username)
        )
    )


def _move(appeal: Appeal, allowed, expect: str | None, **values) -> None:
    """Change the appeal if its status is still one of ``allowed`` (and ``expect``, the one
    the user saw, when given) and it is still at its organisation; else ``Conflict``."""
    query = update(Appeal).where(
        Appeal.id == appeal.id,
        Appeal.org_code == appeal.org_code,
        Appeal.status.in_([str(s) for s in allowed]),
    )
    if expect:
        query = query.where(Appeal.status == expect)
    done = db.session.execute(query.values(**values).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise Conflict("the appeal changed in the meantime", code="appeal_changed")
    db.session.expire(appeal)


def assign(user: ConsoleUser, appeal: Appeal, username: str, expect: str | None = None,
           now: dt.datetime | None = None) -> None:  # fmt: skip
    """Give the appeal to ``username`` (one of ``assignees``). ``Invalid`` for anyone else;
    ``Conflict`` unless it waits for the organisation."""
    username = (username or "").strip().lower()
    if username not in {u.username for u in assignees(user, appeal)}:
        raise Invalid("this user cannot handle the appeal", {"assignee": "unknown"})
    before = {"status": appeal.status, "assigned_to": appeal.assigned_to}
    _move(appeal, HANDLING, expect, status=AppealStatus.ASSIGNED, assigned_to=username,
          updated_at=now or utcnow())  # fmt: skip
    audit(user, appeal.org_code, "appeal.assign", f"appeal:{appeal.id}", before,
          {"status": AppealStatus.ASSIGNED.value, "assigned_to": username})  # fmt: skip


def check_answer(text: str) -> str:
    text = (text or "").strip()
    if len(text) < ANSWER_MIN:
        raise Invalid("the answer is too short", {"answer": "short"})
    if len(text) > ANSWER_MAX:
        raise Invalid("the answer is too long", {"answer": "long"})
    return text


def answer(user: ConsoleUser, appeal: Appeal, text: str, expect: str | None = None,
           now: dt.datetime | None = None) -> None:  # fmt: skip
    """Answer the rider; the appeal then waits for their say. ``Invalid`` for a text outside
    ANSWER_MIN..ANSWER_MAX characters; ``Conflict`` unless it waits for the organisation."""
    text = check_answer(text)
    now = now or utcnow()
    before = {"status": appeal.status, "answer": appeal.answer}
    _move(appeal, HANDLING, expect, status=AppealStatus.ANSWERED, answer=text, answered_at=now,
          answered_by=user.username, updated_at=now)  # fmt: skip
    audit(user, appeal.org_code, "appeal.answer", f"appeal:{appeal.id}", before,
          {"status": AppealStatus.ANSWERED.value, "answer": text})  # fmt: skip


def parent_of(appeal: Appeal) -> str | None:
    """The organisation above the appeal's, if there is one."""
    parent = Organisation.parent_of(appeal.org_code)
    if parent is None:
        return None
    return db.session.scalar(select(Organisation.code).where(Organisation.code == parent))


def escalate(user: ConsoleUser, appeal: Appeal, expect: str | None = None,
             now: dt.datetime | None = None) -> str:  # fmt: skip
    """Pass the appeal up to the parent organisation, open and unassigned again; returns the
    parent's code. The user may no longer see it then (it left their subtree): that is the
    point. ``Invalid`` at the top of the tree; ``Conflict`` unless it waits for the
    organisation."""
    parent = parent_of(appeal)
    if parent is None:
        raise Invalid("the appeal is at the top of the tree", {"org": "top"})
    before = {"org_code": appeal.org_code, "status": appeal.status,
              "assigned_to": appeal.assigned_to}  # fmt: skip
    _move(appeal, HANDLING, expect, org_code=parent, status=AppealStatus.OPEN, assigned_to=None,
          updated_at=now or utcnow())  # fmt: skip
    # recorded at the organisation it left, whose admins can read their audit log
    audit(user, before["org_code"], "appeal.escalate", f"appeal:{appeal.id}", before,
          {"org_code": parent, "status": AppealStatus.OPEN.value, "assigned_to": None})  # fmt: skip
    return parent


def archive(user: ConsoleUser, appeal: Appeal, expect: str | None = None,
            now: dt.datetime | None = None) -> None:  # fmt: skip
    """Archive an answered or resolved appeal; ``Conflict`` for any other."""
    before = {"status": appeal.status}
    _move(appeal, ARCHIVABLE, expect, status=AppealStatus.ARCHIVED, updated_at=now or utcnow())
    audit(user, appeal.org_code, "appeal.archive", f"appeal:{appeal.id}", before,
          {"status": AppealStatus.ARCHIVED.value})  # fmt: skip
