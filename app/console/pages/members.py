"""Members of the user's subtree: search, a member's standing and ledger, manual adjustment.

A member is in the subtree when their primary organisation or one they take part in is. A
member outside it is "not found" (404), whatever id is typed. The phone number is never shown
(only its keyed hash is stored anyway). A member whose personal data was erased is no longer
found by search; their page, reached by id, says so. Only an admin of the subtree of the
member's primary organisation may erase (``services.erasure``).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import exists, or_, select

from ...errors import Invalid
from ...extensions import db
from ...models import ConsoleUser, Member, MemberOrg, Organisation, Partner, PartnerMember
from ...services import adjustments, console_users, erasure
from ...services.console_users import in_scope, in_subtree
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
    knows by the reference ``text``; the newest first when ``text`` is empty. Erased members
    are never listed."""
    query = select(Member).where(member_in_subtree(user), Member.erased_at.is_(None))
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


def may_erase(user: ConsoleUser, member: Member) -> bool:
    """Admins of the member's primary organisation (or above it) may erase the member's
    personal data: erasure is not for an organisation the member only takes part in."""
    return console_users.may(user, "erase") and in_scope(user, member.primary_org.code)


def _member_page(member: Member, form: dict | None = None, errors: dict | None = None,
                 status: int = 200, erase_form: dict | None = None,
                 erase_errors: dict | None = None):  # fmt: skip
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
        can_erase=member.erased_at is None and may_erase(user, member),
        erase_form=erase_form or {},
        erase_errors=erase_errors or {},
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


@bp.route("/members/<int:member_id>/erase", methods=["POST"])
@user_required("erase")
def erase(member_id: int):
    user = current_user()
    target = member_in_scope(user, member_id)
    if not may_erase(user, target):
        abort(403)
    if target.erased_at is not None:
        flash(_("这位骑手的个人信息已经删除过了，没有再做改动。"))
        return redirect(url_for("console.member", member_id=member_id))
    form = {"reason": request.form.get("reason", "")[:600],
            "confirm": request.form.get("confirm") == "1"}  # fmt: skip
    errors = {}
    if not form["confirm"]:
        errors["confirm"] = _("请勾选确认：删除后无法恢复。")
    try:
        reason = erasure.check_reason(form["reason"])
    except Invalid:
        errors["reason"] = _("原因请写 %(min)s 到 %(max)s 个字。", min=erasure.REASON_MIN,
                             max=erasure.REASON_MAX)  # fmt: skip
    if errors:
        return _member_page(target, status=400, erase_form=form, erase_errors=errors)
    try:
        erasure.erase_member(target.id, actor=user, reason=reason)
    except Invalid as exc:  # the reason names the member: nothing was written
        db.session.rollback()
        if exc.code != "personal_reason":
            raise
        errors = {"reason": _("原因里不能写骑手的姓名、电话或平台编号。")}
        return _member_page(member_in_scope(user, member_id), status=400, erase_form=form,
                            erase_errors=errors)  # fmt: skip
    db.session.commit()
    flash(_("已删除这位骑手的个人信息；积分记录保留，名字显示为“匿名”。"))
    return redirect(url_for("console.member", member_id=member_id))
