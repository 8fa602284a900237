"""Signed-cookie sessions (riders' pages and the console) whose cookie is refreshed hourly.

Flask re-signs and re-sends a permanent session's cookie on every response to slide its expiry
(``SESSION_REFRESH_EACH_REQUEST``): a serialisation, an HMAC and a Set-Cookie header on every
page, about a third of a millisecond. Here a session that did not change is sent again only
when its last refresh is ``SESSION_REFRESH_SECONDS`` old (an hour by default), so the expiry
still slides with use, by the hour, and a session that did change is sent at once as before.
"""

from __future__ import annotations

import time

from flask import Flask
from flask.sessions import SecureCookieSessionInterface, SessionMixin

REFRESHED = "_r"  # when the cookie was last sent (epoch seconds)


class HourlyRefresh(SecureCookieSessionInterface):
    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        age = time.time() - session.get(REFRESHED, 0)
        return age >= app.config["SESSION_REFRESH_SECONDS"]

    def save_session(self, app: Flask, session: SessionMixin, response) -> None:
        if session and session.permanent and self.should_set_cookie(app, session):
            session[REFRESHED] = int(time.time())
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.config.setdefault("SESSION_REFRESH_SECONDS", 3600)
    app.session_interface = HourlyRefresh()
