"""Fixtures of the rider pages: a member signed in through a real login link."""

from __future__ import annotations

import re

import pytest


class Rider:
    """A browser-like test client signed in as one member."""

    def __init__(self, client, ref: str):
        self.client = client
        self.ref = ref

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):
        """POST a form with the session's CSRF token (as the page's form would)."""
        form = {"csrf": self.csrf(), **(data or {})}
        return self.client.post(path, data=form, **kwargs)

    def csrf(self) -> str:
        with self.client.session_transaction() as session:
            return session.get("csrf", "")


def login_link(partner_api, ref: str) -> str:
    response = partner_api.client.post(
        f"/api/v1/members/{ref}/login-link", headers=partner_api.headers
    )
    assert response.status_code == 201, response.json
    return response.json["url"].replace("http://localhost", "")


def sign_in(app, partner_api, ref: str) -> Rider:
    client = app.test_client()
    response = client.get(login_link(partner_api, ref))
    assert response.status_code == 302, response.data
    return Rider(client, ref)


@pytest.fixture
def web(app_ctx, partner_api, rider) -> Rider:
    """r1 (the ``rider`` fixture: delivery, at the members' home district), signed in."""
    return sign_in(app_ctx, partner_api, rider)


def text_of(response) -> str:
    """The page's visible text, roughly: tags dropped, whitespace squeezed."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
