"""Members as partners see them: registration by a partner's own reference, and lookups."""

from __future__ import annotations

import hashlib
import hmac
import re

from flask import current_app
from sqlalchemy import select

from ..engine import MemberFacts
from ..errors import Forbidden, Invalid, NotFound
from ..extensions import db
from ..models import Member, MemberOrg, Organisation, Partner, PartnerMember
from .bulk import among


def phone_hash(phone: str) -> str:
    """Keyed hash of a phone number, normalised so +86 138-0013-8000 equals 13800138000."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    key = (
        current_app.config["PHONE_HASH_KEY"]
        or hmac.new(
            current_app.config["SECRET_KEY"].encode(), b"phone-hash", hashlib.sha256
        ).hexdigest()
    )
    return hmac.new(key.encode(), digits.encode(), hashlib.sha256).hexdigest()


def find_member(partner: Partner, ref: str) -> Member:
    """The member ``partner`` knows as ``ref``; 404 for anyone else's (no leak)."""
    link = db.session.scalar(
        select(PartnerMember).where(
            PartnerMember.partner_id == partner.id, PartnerMember.ref == ref
        )
    )
    if link is None:
        raise NotFound(f"no member {ref!r} for this partner", code="unknown_member")
    return link.member


def organisations(codes: list[str]) -> dict[str, Organisation]:
    """Organisations by code; raise ``Invalid`` naming any that do not exist."""
    codes = list(dict.fromkeys(codes))
    found = {
        o.code: o
        for o in db.session.scalars(select(Organisation).where(Organisation.code.in_(codes)))
    }
    missing = [c for c in codes if c not in found]
    if missing:
        raise Invalid(f"unknown organisation {missing[0]!r}", {"orgs": missing}, code="unknown_org")
    return found


def upsert_member(partner: Partner, ref: str, data: dict) -> tuple[Member, bool]:
    """Create or update the member ``partner`` calls ``ref``; return it and whether the
    reference is new. A new reference whose phone matches a member another partner
    registered links to that member (one person, one balance), unless an organisation
    marked that member ``no_phone_merge``."""
    link = db.session.scalar(
        select(PartnerMember).where(
            PartnerMember.partner_id == partner.id, PartnerMember.ref == ref
        )
    )
    member = link.member if link else None
    if member is None and ("name" not in data or "primary_org" not in data):
        raise Invalid(
            "a new member needs name and primary_org",
            {k: ["required"] for k in ("name", "primary_org") if k not in data},
        )
    codes = [c for c in [data.get("primary_org"), *data.get("orgs", [])] if c]
    orgs = organisations(codes) if codes else {}
    if "primary_org" in data and not partner.may_report_for(data["primary_org"]):
        raise Forbidden(
            f"this partner may not register members of {data['primary_org']}",
            {"primary_org": data["primary_org"]},
            code="org_not_allowed",
        )
    hashed = phone_hash(data["phone"]) if data.get("phone") else None
    created = link is None
    if member is None and hashed:
        member = db.session.scalar(
            select(Member)
            .where(Member.phone_hash == hashed, Member.no_phone_merge.is_(False))
            .order_by(Member.id)
            .limit(1)
        )
        # Link only to a rider of organisations this partner works with, so a phone number
        # cannot be used to look into another region's members.
        if member is not None and not partner.may_report_for(member.primary_org.code):
            member = None
        if member is not None:  # another platform's rider: keep their record, add to it
            _merge_into(member, data, orgs)
    if member is None:
        member = Member(
            display_name=data["name"],
            primary_org_id=orgs[data["primary_org"]].id,
            phone_hash=hashed,
        )
        db.session.add(member)
        _apply(member, data, orgs, hashed)
    elif link is not None:
        _apply(member, data, orgs, hashed)
    if link is None:
        db.session.flush()
        db.session.add(PartnerMember(partner_id=partner.id, ref=ref, member_id=member.id))
    db.session.flush()
    return member, created


def _apply(member: Member, data: dict, orgs: dict[str, Organisation], hashed: str | None) -> None:
    if "name" in data:
        member.display_name = data["name"]
    if hashed:
        member.phone_hash = hashed
    for key in ("party_member", "industry"):
        if key in data:
            setattr(member, key, data[key])
    if "tags" in data:
        member.tags = sorted(set(data["tags"]))
    if "hide_from_boards" in data:
        member.hidden = data["hide_from_boards"]
    if "primary_org" in data:
        member.primary_org_id = orgs[data["primary_org"]].id
    if "orgs" in data or "primary_org" in data:
        wanted = [data.get("primary_org") or member.primary_org.code, *data.get("orgs", [])]
        _set_orgs(member, [orgs.get(c) or _org(c) for c in dict.fromkeys(wanted)])


def _merge_into(member: Member, data: dict, orgs: dict[str, Organisation]) -> None:
    member.party_member = member.party_member or bool(data.get("party_member"))
    member.industry = member.industry or data.get("industry")
    member.tags = sorted(set(member.tags) | set(data.get("tags", [])))
    current = {mo.org_code for mo in member.orgs}
    extra = [o for code, o in orgs.items() if code not in current]
    _set_orgs(member, [_org(c) for c in current] + extra)


def _org(code: str) -> Organisation:
    return db.session.scalar(select(Organisation).where(Organisation.code == code))


def _set_orgs(member: Member, orgs: list[Organisation]) -> None:
    wanted = {o.id: o for o in orgs}
    member.orgs = [mo for mo in member.orgs if mo.org_id in wanted] + [
        MemberOrg(org_id=o.id, org_code=o.code)
        for o in orgs
        if o.id not in {mo.org_id for mo in member.orgs}
    ]


def member_codes(member: Member) -> tuple[str, ...]:
    """The member's organisation codes, primary first."""
    return _codes(member.primary_org.code, (mo.org_code for mo in member.orgs))


def _codes(primary: str, codes) -> tuple[str, ...]:
    return (primary, *sorted(c for c in codes if c != primary))


def facts_for(ids) -> dict[int, MemberFacts]:
    """What the rules know of many members (as ``rewards.facts_of`` for one), in two queries
    and without loading them: for jobs that score or re-evaluate members a batch at a time."""
    members, orgs = Member.__table__, Organisation.__table__
    m, o, mo = members.c, orgs.c, MemberOrg.__table__.c
    ids = list(ids)
    codes: dict[int, list[str]] = {}
    for member_id, code in db.session.execute(
        select(mo.member_id, mo.org_code).where(among(mo.member_id, ids))
    ).all():
        codes.setdefault(member_id, []).append(code)
    rows = db.session.execute(
        select(m.id, m.party_member, m.industry, m.level, m.tags, o.code)
        .select_from(members.join(orgs, o.id == m.primary_org_id))
        .where(among(m.id, ids))
    ).all()
    return {
        r.id: MemberFacts(
            party_member=r.party_member,
            industry=r.industry,
            level=r.level,
            primary_org=r.code,
            orgs=_codes(r.code, codes.get(r.id, ())),
            tags=frozenset(r.tags or ()),
        )
        for r in rows
    }
