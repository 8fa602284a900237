"""Volunteer-hours certificates: a member's verified volunteer hours of one year, with a code
anyone can check.

Hours are the ``hours`` of the member's events of volunteer types (``volunteer.*`` in the event
types) that were awarded (an organisation verified them), by the local year in which the
service happened; pending ones are counted apart and not certified. One code is issued per
(member, year, hours): the same hours give the same code again and changed hours a new one, so
a code always states the hours it was issued for.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..engine import RuleSet
from ..engine.periods import zone
from ..extensions import db
from ..models import Certificate, Event, Member
from ..models.event import EventStatus
from .boards.keys import mask_name
from .rewards import CODE_ALPHABET

VOLUNTEER_PREFIX = "volunteer."
CODE_LENGTH = 10
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class YearHours:
    """A year's volunteer hours: verified (awarded) and still waiting for verification."""

    year: int
    hours: Decimal = ZERO
    pending: Decimal = ZERO


def volunteer_types(rules: RuleSet) -> list[str]:
    return sorted(t for t in rules.event_types if t.startswith(VOLUNTEER_PREFIX))


def hours_by_year(rules: RuleSet, member: Member, tz_name: str) -> dict[int, YearHours]:
    """Every local year in which the member has volunteer events awarded or pending, with
    their hours; one read of the member's volunteer events (a few hundred at most)."""
    types = volunteer_types(rules)
    if not types:
        return {}
    rows = db.session.execute(
        select(Event.occurred_at, Event.status, Event.data["hours"].as_float()).where(
            Event.member_id == member.id,
            Event.type.in_(types),
            Event.status.in_([EventStatus.AWARDED, EventStatus.PENDING]),
        )
    )
    tz = zone(tz_name)
    sums: dict[int, dict[str, Decimal]] = {}
    for occurred_at, status, hours in rows:
        year = sums.setdefault(occurred_at.astimezone(tz).year, {"hours": ZERO, "pending": ZERO})
        key = "hours" if status == EventStatus.AWARDED else "pending"
        year[key] += Decimal(str(hours or 0))  # str: 2.3 is 2.3, not 2.29999...
    return {
        y: YearHours(y, s["hours"].quantize(CENT), s["pending"].quantize(CENT))
        for y, s in sums.items()
    }


def issue(member: Member, year: int, hours: Decimal) -> Certificate | None:
    """The certificate of ``hours`` in ``year``: the one issued before for these hours, else a
    new one with a fresh code; None for no hours. Flushes; the caller commits."""
    hours = Decimal(hours).quantize(CENT)
    if hours <= 0:
        return None
    for _ in range(5):
        found = db.session.scalar(
            select(Certificate).where(
                Certificate.member_id == member.id,
                Certificate.year == year,
                Certificate.hours == hours,
            )
        )
        if found is not None:
            return found
        cert = Certificate(code=new_code(), member_id=member.id, year=year, hours=hours)
        try:
            with db.session.begin_nested():
                db.session.add(cert)
        except IntegrityError:  # issued at the same moment by another request, or code taken
            continue
        return cert
    raise RuntimeError("could not issue a certificate code")  # pragma: no cover


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise(code: str) -> str | None:
    """The code as issued (upper case, no spaces or dashes), or None if it cannot be one."""
    code = (code or "").strip().upper().replace("-", "").replace(" ", "")
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    return code


def check(code: str) -> dict | None:
    """What the public check shows of a certificate: the masked name, the hours and the year;
    None for a code never issued."""
    code = normalise(code)
    if code is None:
        return None
    row = db.session.execute(
        select(Certificate.year, Certificate.hours, Member.display_name)
        .join(Member, Member.id == Certificate.member_id)
        .where(Certificate.code == code)
    ).first()
    if row is None:
        return None
    return {"code": code, "name": mask_name(row.display_name), "year": row.year,
            "hours": Decimal(row.hours).quantize(CENT)}  # fmt: skip
