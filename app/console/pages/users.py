"""Console users of the admin's subtree: the list, a new user, disabling and enabling.

Only admins come here. A user outside the admin's subtree is "not found" (404), whatever id is
typed; a new user belongs to the admin's organisation or one below it. Every change is written
to the audit log by the service.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ...errors import Conflict, Invalid, NotFound
from ...extensions import db
from ...models import Organisation, Role
from ...services import console_users
from ...services.console_users import in_subtree
from .. import bp
from .common import current_user, user_required

FIELDS = ("username", "display_name", "org", "role")


def role_words() -> dict[str, str]:
    return {
        Role.ADMIN: _("管理员"),
        Role.VERIFIER: _("审核员"),
        Role.STATION: _("驿站工作人员"),
        Role.VIEWER: _("只读"),
    }


def _page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    admin = current_user()
    orgs = db.session.scalars(
        select(Organisation)
        .where(in_subtree(Organisation.code, admin.org_code))
        .order_by(Organisation.code)
    )
    return render_template(
        "console/users.html",
        users=console_users.users_of(admin),
        orgs=list(orgs),
        roles=role_words(),
        form=form or {"org": admin.org_code, "role": Role.VIEWER.value},
        errors=errors or {},
        min_password=console_users.MIN_PASSWORD,
    ), status


@bp.route("/users", methods=["GET"])
@user_required("users")
def users():
    return _page()


def _create_errors(form: dict, password: str, again: str) -> dict[str, str]:
    """What is wrong with the form before the service is asked (the service checks again)."""
    errors = {}
    if not console_users.in_scope(current_user(), form["org"]):
        errors["org"] = _("只能为本组织或下级组织创建用户。")
    if form["role"] not in {r.value for r in Role}:
        errors["role"] = _("请选择一个角色。")
    if len(password) < console_users.MIN_PASSWORD:
        errors["password"] = _("密码至少 %(min)s 个字符。", min=console_users.MIN_PASSWORD)
    elif password != again:
        errors["password2"] = _("两次输入的密码不一致。")
    return errors


@bp.route("/users", methods=["POST"])
@user_required("users")
def user_create():
    admin = current_user()
    form = {k: request.form.get(k, "").strip()[:200] for k in FIELDS}
    password = request.form.get("password", "")[:200]
    errors = _create_errors(form, password, request.form.get("password2", "")[:200])
    if not errors:
        try:
            user = console_users.create_user(form["username"], password, form["org"],
                                             form["role"], form["display_name"][:100],
                                             created_by=admin.username)  # fmt: skip
        except Conflict:
            errors["username"] = _("这个用户名已被使用。")
        except Invalid as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            if "username" in details:
                errors["username"] = _("用户名为 3 到 64 个字符：小写字母、数字、“.”、“_”、“-”。")
            elif exc.code == "unknown_org":
                errors["org"] = _("没有这个组织。")
            else:
                errors["role"] = _("请选择一个角色。")
    if errors:
        db.session.rollback()
        return _page(form, errors, 400)
    console_users.audit(admin, user.org_code, "user.create", f"user:{user.username}", None,
                        {"org": user.org_code, "role": user.role})  # fmt: skip
    db.session.commit()
    flash(_("已创建用户 %(username)s。", username=user.username))
    return redirect(url_for("console.users"))


@bp.route("/users/<int:user_id>/<any(disable, enable):change>", methods=["POST"])
@user_required("users")
def user_disable(user_id: int, change: str):
    try:
        user = console_users.set_disabled(current_user(), user_id, change == "disable")
    except NotFound:
        abort(404)
    except Invalid:
        db.session.rollback()
        flash(_("不能停用你自己的账号。"), "error")
        return redirect(url_for("console.users"))
    db.session.commit()
    if change == "disable":
        flash(_("已停用用户 %(username)s。", username=user.username))
    else:
        flash(_("已启用用户 %(username)s。", username=user.username))
    return redirect(url_for("console.users"))
