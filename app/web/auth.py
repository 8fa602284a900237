"""Getting in: signed single-use login links, the member's session, and CSRF protection.

A link is ``/m/login/<token>``: the token is signed with SECRET_KEY (itsdangerous) and names
a ``login_tokens`` row, which is spent when the link is opened, so a link works once and only
until it expires (``LOGIN_LINK_SECONDS``). The session then holds only the member's id, the
partner that asked for the link, and a CSRF token; it lasts ``PERMANENT_SESSION_LIFETIME``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import secrets

from flask import Flask, abort, current_app, request, session, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import update

from ..extensions import db
from ..models import LoginToken, Member, Partner
from ..models.base import utcnow

SALT = "pioneer-points login link"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def issue_link(partner: Partner, member: Member, now: dt.datetime | None = None) -> tuple:
    """A new login link for ``member``: (absolute URL, expiry). The caller commits."""
    now = now or utcnow()
    jti = secrets.token_hex(16)
    expires = now + dt.timedelta(seconds=current_app.config["LOGIN_LINK_SECONDS"])
    db.session.add(LoginToken(jti=jti, member_id=member.id, partner_id=partner.id,
                              issued_at=now, expires_at=expires))  # fmt: skip
    token = _serializer().dumps(jti)
    return url_for("web.login", token=token, _external=True), expires


class LinkRefused(Exception):
    """A link that is forged, expired or already used; ``reason`` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def spend(token: str, now: dt.datetime | None = None) -> LoginToken:
    """The token's row, marked used; ``LinkRefused`` for a bad, expired or used link."""
    now = now or utcnow()
    try:
        jti = _serializer().loads(token)
    except BadSignature:
        raise LinkRefused("invalid") from None
    row = db.session.get(LoginToken, jti) if isinstance(jti, str) else None
    if row is None:
        raise LinkRefused("invalid")
    if row.used_at is not None:
        raise LinkRefused("used")
    if row.expires_at <= now:
        raise LinkRefused("expired")
    done = db.session.execute(
        update(LoginToken)
        .where(LoginToken.jti == jti, LoginToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # opened twice at the same moment: the other one won
        raise LinkRefused("used")
    return row


def start_session(row: LoginToken) -> None:
    session.clear()
    session.permanent = True
    session["m"] = row.member_id
    session["p"] = row.partner_id
    session["csrf"] = secrets.token_urlsafe(24)


def current_member() -> Member | None:
    """The signed-in member (cached on the request), or None."""
    if not hasattr(request, "pp_member"):
        member_id = session.get("m")
        member = db.session.get(Member, member_id) if isinstance(member_id, int) else None
        request.pp_member = None if member is None or member.erased_at is not None else member
    return request.pp_member


def member_required(view):
    """Pages for a signed-in member; anyone else gets the friendly 'open the link' page."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_member() is None:
            abort(401)
        return view(*args, **kwargs)

    return wrapper


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def check_csrf() -> None:
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        sent = request.form.get("csrf", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            abort(400, description="csrf")


def init_app(app: Flask) -> None:
    """``csrf_token()`` for templates (the blueprint checks it: ``pages.common``)."""
    app.jinja_env.globals["csrf_token"] = csrf_token
