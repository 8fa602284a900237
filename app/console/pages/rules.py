"""Rules: the effective rules for the user's organisation, and checking a new version of its
own file (validation with line numbers, then a simulation). Nothing is activated here:
publishing is a separate step.

Everyone reads; checking needs the ``rules`` action, and only ever concerns the user's own
organisation's file (the form has no organisation to tamper with).
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from ...engine.ruleset import ancestors
from ...extensions import db
from ...services import console_users, rules_check
from ...services.rules import current_rules
from .. import bp
from .common import current_user, user_required


def _page(text: str | None = None, error: str | None = None, status: int = 200):
    user = current_user()
    ruleset = current_rules()
    org = user.org_code
    file_org = ruleset.file_org_for(org)
    chain = ruleset.chains.get(file_org, ()) if file_org else ()
    files = [ruleset.files[c] for c in ancestors(org) if c in ruleset.files]
    rewards = [r for c in ancestors(org) for r in ruleset.rewards_at(c)]
    own = rules_check.own_file(org)
    return render_template(
        "console/rules.html",
        org=org,
        version=ruleset.version,
        file_org=file_org,
        files=files,
        chain=chain,
        levels=ruleset.levels_for(org),
        badges=ruleset.badges_for(org),
        rewards=rewards,
        has_file=own is not None,
        text=(own or "") if text is None else text,
        error=error,
        can_check=console_users.may(user, "rules"),
        max_kb=rules_check.MAX_BYTES // 1024,
    ), status


@bp.route("/rules", methods=["GET"])
@user_required()
def rules():
    return _page()


def _candidate() -> tuple[str | None, str | None]:
    """The uploaded file, else the text typed; and what is wrong with it (or None)."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.stream.read(rules_check.MAX_BYTES + 1)
    else:
        raw = request.form.get("text", "").encode("utf-8")
    if len(raw) > rules_check.MAX_BYTES:
        return None, _("文件不能超过 %(kb)s KB。", kb=rules_check.MAX_BYTES // 1024)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, _("文件必须是 UTF-8 编码的 YAML。")
    if not text.strip():
        return None, _("请粘贴规则文件的内容，或选择一个文件。")
    return text.replace("\r\n", "\n"), None


@bp.route("/rules/check", methods=["POST"])
@user_required("rules")
def rules_check_page():
    user = current_user()
    text, error = _candidate()
    if error:
        return _page(request.form.get("text", "")[: rules_check.MAX_BYTES], error, 400)
    check = rules_check.check_candidate(user.org_code, text, by=user)
    db.session.commit()
    status = 200 if check.simulation is not None else 422
    return render_template("console/rules_check.html", check=check), status
