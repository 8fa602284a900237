"""Erase a member's personal data on request: the person becomes anonymous, while the ledger
and everything computed from it (balance, lifetime points, level, badges, board places) stay.

What is personal, and what happens to it:

- ``members.display_name`` becomes ``ANONYMOUS`` (匿名), ``phone_hash`` is cleared (so no
  partner's phone number links to this member any more) and ``erased_at`` is set: rider
  sessions and login links stop working (``web.auth``), boards and exports show 匿名, the
  console no longer finds the member by name.
- ``partner_members.ref`` (a partner's reference: often a phone number or a name) becomes
  ``erased-<HMAC>``, keyed by SECRET_KEY: not reversible, unique per (partner, reference), so
  the unique constraint holds. The rows stay, because a partner still confirms or cancels the
  member's pending redemptions through them. A partner that later sends the old reference is
  not recognised (``unknown_member``); registering it again (``PUT /members/<ref>``) creates a
  new, separate member with an empty ledger. That is what erasure asks for.
- Login links (``login_tokens``) are deleted; volunteer-hours certificates are deleted, so
  their public codes no longer check out (they would only show 匿名 anyway).
- Appeals: the rider's own text (``note``) is replaced by ``ERASED_NOTE``; the organisation's
  answer keeps its words with the old name taken out.
- The old name is taken out of the other free texts tied to the member that no hash covers:
  events' ``data`` strings and ``reason``, and the audit log entries about the member, their
  appeals and their events.

What stays: ledger entries (their hashed columns must not change: ``models.ledger.HASHED``;
an adjustment's reason written by an organisation stays as written), events' ``body_hash``
(a one-way hash of the partner's request, which keeps a partner's retry of an old event
idempotent), organisations, industry, party membership and tags (the facts the rules read: a
recalculation or badge re-evaluation must give the same points), counters, progress, level
changes, badge grants and redemptions (which name the reward, not the person).

The erasure itself is recorded in the audit log as ``member.erase`` with the reason and
counts, never the name, phone or references; a reason that contains them is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import asdict, dataclass

from flask import current_app
from sqlalchemy import delete, select, update

from ..errors import Invalid, NotFound
from ..extensions import db
from ..models import (
    Appeal,
    AuditEntry,
    Certificate,
    ConsoleUser,
    Event,
    LoginToken,
    Member,
    PartnerMember,
)
from ..models.base import utcnow
from .boards.keys import ANONYMOUS
from .console_users import audit

ERASED_NAME = ANONYMOUS
ERASED_NOTE = "（骑手的个人信息已删除）"
REF_PREFIX = "erased-"
REASON_MIN, REASON_MAX = 4, 500
MIN_NAME = 2  # a shorter name is not looked for in free text: it would match too much
MIN_REF = 5  # likewise for partner references in the erasure's reason
CHUNK = 500  # audit targets per query


@dataclass(frozen=True)
class Erasure:
    """What ``erase_member`` did; ``already`` when the member had been erased before (and
    nothing was changed)."""

    member_id: int
    erased_at: dt.datetime
    already: bool = False
    partner_refs: int = 0
    login_links: int = 0
    certificates: int = 0
    appeals: int = 0
    events: int = 0  # events whose data or reason named the member
    audit_entries: int = 0  # earlier audit entries that named the member

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if type(v) is int and k != "member_id"}


def check_reason(reason: str | None) -> str:
    """The reason, stripped; ``Invalid`` unless it has REASON_MIN..REASON_MAX characters."""
    reason = (reason or "").strip()
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise Invalid(
            f"the reason needs {REASON_MIN} to {REASON_MAX} characters",
            {"reason": "length"},
            "invalid_reason",
        )
    return reason


def erased_ref(partner_id: int, ref: str) -> str:
    """The token an erased partner reference is replaced with: ``erased-`` and an HMAC of
    (partner, reference) under a key derived from SECRET_KEY."""
    key = hmac.new(
        current_app.config["SECRET_KEY"].encode(), b"erased-partner-ref", hashlib.sha256
    ).digest()
    mac = hmac.new(key, f"{partner_id}\x00{ref}".encode(), hashlib.sha256).hexdigest()
    return REF_PREFIX + mac


def erase_member(member_id: int, *, actor: ConsoleUser | None, reason: str,
                 now: dt.datetime | None = None) -> Erasure:  # fmt: skip
    """Erase the member's personal data (see the module's docstring) and audit it as
    ``member.erase`` by ``actor`` (None: the command line). Flushes; the caller commits.

    ``NotFound`` for an unknown member; ``Invalid`` for a reason that is too short or long or
    that contains the member's name or a partner's reference to them. A member erased before
    is left as it is: the result says ``already``."""
    member = db.session.scalar(
        select(Member).where(Member.id == member_id).with_for_update(of=Member)
    )
    if member is None:
        raise NotFound(f"no member {member_id}", {"member": member_id}, "unknown_member")
    if member.erased_at is not None:
        return Erasure(member.id, member.erased_at, already=True)
    reason = check_reason(reason)
    links = list(
        db.session.scalars(select(PartnerMember).where(PartnerMember.member_id == member.id))
    )
    name = (member.display_name or "").strip()
    personal = [name] if len(name) >= MIN_NAME else []
    personal += [link.ref for link in links if len(link.ref) >= MIN_REF]
    if any(p in reason for p in personal):
        raise Invalid(
            "the reason must not contain the member's name or references",
            {"reason": "personal"},
            "personal_reason",
        )
    now = now or utcnow()

    scrub = _Scrubber(name if len(name) >= MIN_NAME else None)
    for link in links:
        link.ref = erased_ref(link.partner_id, link.ref)
    login_links = _deleted(delete(LoginToken).where(LoginToken.member_id == member.id))
    certificates = _deleted(delete(Certificate).where(Certificate.member_id == member.id))
    appeal_ids = []
    for appeal in db.session.scalars(select(Appeal).where(Appeal.member_id == member.id)).all():
        appeal_ids.append(appeal.id)
        appeal.note = ERASED_NOTE
        if appeal.answer:
            appeal.answer = scrub(appeal.answer)
    event_ids, events = [], 0
    for event_id, data, why in db.session.execute(
        select(Event.id, Event.data, Event.reason).where(Event.member_id == member.id)
    ).all():
        event_ids.append(event_id)
        clean = {"data": scrub(data), "reason": scrub(why)}
        if clean != {"data": data, "reason": why}:
            db.session.execute(
                update(Event).where(Event.id == event_id).values(**clean)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            events += 1
    targets = [f"member:{member.id}"]
    targets += [f"appeal:{i}" for i in appeal_ids] + [f"event:{i}" for i in event_ids]
    audit_entries = _scrub_audit(targets, scrub)

    member.display_name = ERASED_NAME
    member.phone_hash = None
    member.erased_at = now
    result = Erasure(member.id, now, partner_refs=len(links), login_links=login_links,
                     certificates=certificates, appeals=len(appeal_ids), events=events,
                     audit_entries=audit_entries)  # fmt: skip
    audit(actor, member.primary_org.code, "member.erase", f"member:{member.id}",
          {"erased": False}, {"erased": True, "reason": reason, **result.counts()})  # fmt: skip
    db.session.flush()
    return result


class _Scrubber:
    """Replace the old name with ``ERASED_NAME`` in a text, or in every string of a JSON
    value; anything without it comes back unchanged (equal)."""

    def __init__(self, name: str | None):
        self.name = name

    def __call__(self, value):
        if self.name is None:
            return value
        if isinstance(value, str):
            return value.replace(self.name, ERASED_NAME)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def _deleted(statement) -> int:
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def _scrub_audit(targets: list[str], scrub: _Scrubber) -> int:
    """Take the name out of the audit entries about ``targets``; how many changed."""
    if scrub.name is None:
        return 0
    changed = 0
    for start in range(0, len(targets), CHUNK):
        for entry in db.session.scalars(
            select(AuditEntry).where(AuditEntry.target.in_(targets[start : start + CHUNK]))
        ).all():
            before, after = scrub(entry.before), scrub(entry.after)
            if (before, after) != (entry.before, entry.after):
                entry.before, entry.after = before, after
                changed += 1
    return changed
