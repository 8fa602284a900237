"""Members: register or update, read balance and period totals, page through the ledger."""

from __future__ import annotations

from flask import current_app, g
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy.exc import IntegrityError

from ..errors import Invalid
from ..extensions import db
from ..models import Event, LedgerEntry, Member
from ..services import expiry, ledger, standing
from ..services.members import find_member, member_codes, upsert_member
from ..services.rules import current_rules
from ..web.auth import issue_link
from .auth import SECURITY, require_partner
from .body import body_doc, json_body, load
from .schemas import ErrorOut, LedgerPage, LedgerQuery, LoginLinkOut, MemberIn, MemberOut

blp = Blueprint("members", __name__, description="Members as each partner knows them")
blp.before_request(require_partner)
_MEMBER_IN = MemberIn()
ERRORS = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


def member_out(member: Member, ref: str, totals: bool = False) -> dict:
    out = {
        "ref": ref,
        "name": member.display_name,
        "primary_org": member.primary_org.code,
        "orgs": list(member_codes(member)),
        "party_member": member.party_member,
        "industry": member.industry,
        "tags": list(member.tags),
        "balance": member.balance,
        "lifetime_points": member.lifetime_points,
        "level": member.level,
        "hide_from_boards": member.hidden,
    }
    if totals:
        periods = ledger.period_totals(member.id, current_app.config["APP_TIMEZONE"])
        out["this_week"], out["this_month"] = periods["week"], periods["month"]
        rules = current_rules()
        out["level_info"] = standing.level_info(rules, member)
        out["badges"] = standing.badges_held(rules, member)
        lapse = expiry.warning(rules, member)
        out["expiring"] = {"points": lapse.points, "at": lapse.at} if lapse else None
    return out


def _check_ref(ref: str) -> None:
    if not 1 <= len(ref) <= 128 or "\x00" in ref:
        raise Invalid("a member reference has 1 to 128 characters, none of them NUL")


@blp.route("/members/<ref>", methods=["PUT"])
@blp.doc(security=SECURITY, **body_doc(MemberIn))
@blp.response(200, MemberOut, description="Updated")
@blp.alt_response(201, schema=MemberOut, description="Created")
@blp.alt_response(400, schema=ErrorOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(403, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def put_member(ref: str):
    """Create or update the calling partner's member ``ref``.

    A new reference whose phone number matches a member registered by another partner
    becomes another reference to that member: one person, one balance.
    """
    _check_ref(ref)
    data = load(_MEMBER_IN, json_body())
    for attempt in range(2):
        try:
            member, created = upsert_member(g.partner, ref, data)
            db.session.commit()
            break
        except IntegrityError:  # the same reference registered concurrently: update it
            db.session.rollback()
            if attempt:
                raise
    return member_out(member, ref), 201 if created else 200


@blp.route("/members/<ref>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, MemberOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
def get_member(ref: str):
    """Balance, lifetime points, points this week and this month by category, the level
    with the way to the next, badges held, and points about to expire."""
    _check_ref(ref)
    return member_out(find_member(g.partner, ref), ref, totals=True)


@blp.route("/members/<ref>/login-link", methods=["POST"])
@blp.doc(security=SECURITY)
@blp.response(201, LoginLinkOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
def post_login_link(ref: str):
    """A signed, single-use link that opens the member's own pages (``/m``) for a few minutes:
    open it in the app's web view, never send it to anyone else."""
    _check_ref(ref)
    member = find_member(g.partner, ref)
    url, expires = issue_link(g.partner, member)
    db.session.commit()
    return {"url": url, "expires_at": expires}


@blp.route("/members/<ref>/ledger", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(LedgerQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, LedgerPage)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(404, schema=ErrorOut)
def get_ledger(ref: str, limit: int, cursor: str | None = None):
    """The member's ledger, newest first, each entry with its reason, rule and event.

    Pass the ``next_cursor`` of a page as ``cursor`` to get the next one.
    """
    _check_ref(ref)
    member = find_member(g.partner, ref)
    entries = ledger.ledger_page(member.id, int(cursor) if cursor else None, limit)
    event_ids = {e.event_id for e in entries if e.event_id}
    partner_ids = {}
    if event_ids:
        rows = db.session.execute(
            db.select(Event.id, Event.partner_event_id, Event.partner_id).where(
                Event.id.in_(event_ids)
            )
        )
        partner_ids = {r.id: (r.partner_event_id, r.partner_id) for r in rows}
    return {
        "entries": [_entry_out(e, partner_ids) for e in entries],
        "next_cursor": str(entries[-1].id) if len(entries) == limit else None,
    }


def _entry_out(e: LedgerEntry, events: dict) -> dict:
    event = events.get(e.event_id)
    return {
        "id": e.id,
        "seq": e.seq,
        "points": e.points,
        "kind": e.kind,
        "category": e.category,
        "reason": e.reason,
        "rule": e.rule,
        "rules_version": e.rules_version,
        # another partner's event ids are theirs alone
        "event": event[0] if event and event[1] == g.partner.id else None,
        "org": e.org_code,
        "occurred_at": e.occurred_at,
        "created_at": e.created_at,
        "explanation": e.explanation,
    }
