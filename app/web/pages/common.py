"""Getting in and out, the language switch, what every page's layout needs, and the friendly
pages shown instead of an error."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from ...extensions import db
from ...services.boards.keys import mask_name
from .. import auth, bp, i18n
from . import AREAS

bp.before_request(auth.check_csrf)


@bp.route("/login/<token>")
def login(token: str):
    """Open a login link: start the member's session, or say kindly why not."""
    try:
        row = auth.spend(token)
    except auth.LinkRefused as refused:
        db.session.rollback()
        text = {
            "expired": _("这个登录链接已过期。请回到 App 里重新打开“我的积分”。"),
            "used": _(
                "这个登录链接已经用过了。为了安全，每个链接只能打开一次，请回到 App 里重新打开。"
            ),
        }.get(refused.reason, _("这个登录链接无效。请回到 App 里重新打开“我的积分”。"))
        return render_template("web/message.html", heading=_("无法登录"), text=text), 403
    db.session.commit()
    auth.start_session(row)
    return redirect(url_for("web.home"))


@bp.route("/logout", methods=["POST"])
def logout():
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return render_template("web/message.html", heading=_("已退出"),
                           text=_("你已退出。需要时请从 App 里重新打开。"))  # fmt: skip


@bp.route("/lang/<code>")
def language(code: str):
    """Switch the pages' language, then go back to where the rider was (on this site only)."""
    if code in i18n.LANGUAGES:
        session["lang"] = code
    target = request.args.get("next", "")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(("/m/", "/verify/")):
        target = url_for("web.home")
    return redirect(target)


@bp.app_context_processor
def layout() -> dict:
    """What base.html needs: the member (or None), the masked name, the menu, the language.
    Public pages (the certificate check under /verify/) get only the language: no member."""
    if request.path.startswith("/verify/"):
        return {"me": None, "me_name": "", "lang": i18n.language(), "nav": []}
    if not (request.path == "/m" or request.path.startswith("/m/")):
        return {}
    me = auth.current_member()
    view = current_app.view_functions.get(request.endpoint or "")
    area = (view.__module__.rpartition(".")[2]) if view else ""
    return {
        "me": me,
        "me_name": mask_name(me.display_name) if me else "",
        "lang": i18n.language(),
        # (endpoint, label, whether the page shown is of that area)
        "nav": [(endpoint, str(label), module == area) for module, endpoint, label in AREAS],
    }


def error_page(exc: HTTPException):
    """The page shown for an error under /m: readable, never a stack trace."""
    code = exc.code or 500
    if code == 401:
        heading, text = _("请先登录"), _("请从合作平台 App 里打开“我的积分”，会自动登录。")
    elif code == 404:
        heading, text = _("找不到这个页面"), _("你要找的内容不存在，或者不属于你。")
    elif code == 400 and exc.description == "csrf":
        heading, text = _("页面已过期"), _("请返回上一页，刷新后再试一次。")
    elif code >= 500:
        heading, text = _("出错了"), _("服务暂时出了问题，请稍后再试。你的积分不会丢失。")
    else:
        heading, text = _("无法完成"), _("这个请求无法完成，请返回后再试。")
    return render_template("web/message.html", heading=heading, text=text), code


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return error_page(exc)
