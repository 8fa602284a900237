"""Settings: the pages' language, and whether the member shows on public leaderboards.

The language is kept in the session (as the footer's switch does); hiding is the member's
``hidden`` flag, which the boards read when they name their rows (hidden members show as
匿名 to others and still see their own rank).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import refresh

from ...extensions import db
from .. import bp, i18n
from ..auth import current_member, member_required

CHECKED = "1"  # what the ticked checkbox sends; an unticked one sends nothing


@bp.route("/settings", methods=["GET", "POST"])
@member_required
def settings():
    me = current_member()
    if request.method == "GET":
        return _page([], i18n.language(), me.hidden)
    lang = request.form.get("lang", "")
    hidden = request.form.get("hidden", "")
    errors = []
    if lang not in i18n.LANGUAGES:
        errors.append(_("请选择一种语言：中文或 English。"))
    if hidden not in ("", CHECKED):
        errors.append(_("“不在公开榜单上显示我的名字”只能勾选或不勾选。"))
    if errors:  # nothing is changed: the page shows what is in force
        return _page(errors, i18n.language(), me.hidden), 400
    session["lang"] = lang
    refresh()  # the confirmation below is in the language just chosen
    me.hidden = hidden == CHECKED
    db.session.commit()
    flash(_("设置已保存。"))
    return redirect(url_for("web.settings"))


def _page(errors: list[str], chosen: str, hidden: bool):
    return render_template("web/settings.html", errors=errors, chosen=chosen, hidden=hidden)
