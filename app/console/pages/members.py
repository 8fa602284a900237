"""Members of the user's subtree: search, a member's standing and ledger, manual adjustment.

A member is in the subtree when their primary organisation or one they take part in is. A
member outside it is "not found" (404), whatever id is typed. The phone number is never shown
(only its keyed hash is stored anyway).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import exists, or_, select

from ...errors import Invalid
from ...extensions import db
from ...models import ConsoleUser, Member, MemberOrg, Organisation, Partner, PartnerMember
from ...services import adjustments, console_users
from ...services.console_users import in_subtree
from ...services.ledger import ledger_page
from ...services.rules import current_rules
from ...web.pages.history import category_words, kind_words, parse_id
from .. import bp
from .common import current_user, user_required

LIMIT = 50
QUERY_MAX = 100


def member_in_subtree(user: ConsoleUser):
    """The condition that a member is in the user's subtree."""
    return or_(
        Member.primary_org_id.in_(
            select(Organisation.id).where(in_subtree(Organisation.code, user.org_code))
        ),
        exists().where(
            MemberOrg.member_id == Member.id, in_subtree(MemberOrg.org_code, user.org_code)
        ),
    )


def search(user: ConsoleUser, text: str, limit: int = LIMIT) -> list[Member]:
    """Members of the subtree whose name contains ``text`` (any case), or whom a partner
    knows by the reference ``text``; the newest first when ``text`` is empty."""
    query = select(Member).where(member_in_subtree(user))
    text = text.strip()
    if text:
        by_ref = select(PartnerMember.member_id).where(PartnerMember.ref == text)
        query = query.where(
            Member.display_name.icontains(text, autoescape=True) | Member.id.in_(by_ref)
        ).order_by(Member.display_name, Member.id)
    else:
        query = query.order_by(Member.id.desc())
    return list(db.session.scalars(query.limit(limit)))


def member_in_scope(user: ConsoleUser, member_id: int) -> Member:
    """The member, if in the user's subtree; else 404 (whether it exists or not)."""
    member = db.session.scalar(
        select(Member).where(Member.id == member_id, member_in_subtree(user))
    )
    if member is None:
        abort(404)
    return member


def error_words() -> dict[tuple[str, str], str]:
    return {
        ("points", "not_integer"): _("积分请填写一个整数。"),
        ("points", "zero"): _("调整的积分不能为 0。"),
        ("points", "too_large"): _("一次调整不能超过 %(max)s 分。", max=adjustments.MAX_POINTS),
        ("reason", "length"): _("原因请写 %(min)s 到 %(max)s 个字。", min=adjustments.REASON_MIN,
                                max=adjustments.REASON_MAX),
        ("category", "unknown"): _("请选择一个分类。"),
    }  # fmt: skip


@bp.route("/members", methods=["GET"])
@user_required()
def members():
    text = request.args.get("q", "")[:QUERY_MAX]
    found = search(current_user(), text)
    return render_template("console/members.html", q=text.strip(), members=found, limit=LIMIT)


def _member_page(member: Member, form: dict | None = None, errors: dict | None = None,
                 status: int = 200):  # fmt: skip
    user = current_user()
    before = parse_id(request.args.get("before"))
    lines = ledger_page(member.id, before, LIMIT)
    level = next((lv for lv in current_rules().levels_for(member.primary_org.code)
                  if lv.id == member.level), None)  # fmt: skip
    refs = db.session.execute(
        select(Partner.name, PartnerMember.ref)
        .join(Partner, Partner.id == PartnerMember.partner_id)
        .where(PartnerMember.member_id == member.id)
        .order_by(Partner.name)
    ).all()
    return render_template(
        "console/member.html",
        member=member,
        level=level,
        refs=refs,
        orgs=sorted({o.org_code for o in member.orgs} - {member.primary_org.code}),
        lines=lines,
        more=lines[-1].id if len(lines) == LIMIT else None,
        kinds=kind_words(),
        categories={k: v for k, v in category_words().items() if k},
        can_adjust=console_users.may(user, "adjust"),
        form=form or {},
        errors=errors or {},
    ), status


@bp.route("/members/<int:member_id>", methods=["GET"])
@user_required()
def member(member_id: int):
    return _member_page(member_in_scope(current_user(), member_id))


@bp.route("/members/<int:member_id>/adjust", methods=["POST"])
@user_required("adjust")
def adjust(member_id: int):
    user = current_user()
    target = member_in_scope(user, member_id)
    change, problems = adjustments.parse(request.form)
    form = {k: request.form.get(k, "")[:600] for k in ("points", "reason", "category")}
    if change is None:
        words = error_words()
        errors = {field: words[(field, code)] for field, code in problems.items()}
        return _member_page(target, form, errors, 400)
    try:
        entry = adjustments.adjust(current_rules(), user, target, change)
    except Invalid as exc:  # a deduction larger than the balance: nothing was written
        db.session.rollback()
        if exc.code != "insufficient_points":
            raise
        errors = {"points": _("余额只有 %(balance)s 分，不能扣除 %(points)s 分。",
                              balance=exc.details["balance"], points=-change.points)}  # fmt: skip
        return _member_page(member_in_scope(user, member_id), form, errors, 400)
    db.session.commit()
    signed = f"{entry['points']:+d}"
    flash(_("已调整 %(points)s 分。", points=signed))
    return redirect(url_for("console.member", member_id=member_id))
