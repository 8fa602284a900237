"""Security headers (app/headers.py): every response carries them, pages a strict
Content-Security-Policy and everything else one that allows nothing; no template has an inline
style or a script, which that policy would refuse; CORS stays closed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Response

from app.headers import add_headers

from ..conftest import ROOT
from ..console.test_console import sign_in as console_sign_in
from ..factories import ConsoleUserFactory
from ..partner_api import shift

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"
EVERYWHERE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
FEATURES_OFF = ("camera", "microphone", "geolocation", "payment", "usb")
TEMPLATE_DIRS = [ROOT / "app" / part / "templates" for part in ("web", "console", "api")]
# what a strict style-src / script-src refuses: an inline style attribute, a <style> block, a
# <script> (inline or not: the policy allows no script at all)
REFUSED = re.compile(r"""\sstyle\s*=|<style\b|<script\b""", re.I)


def cors_headers(response) -> list[str]:
    return [name for name, _ in response.headers.items() if name.lower().startswith("access-")]


def assert_secure(response, csp: str) -> None:
    headers = response.headers
    for name, value in EVERYWHERE.items():
        assert headers.get(name) == value, (name, headers.get(name))
    policy = headers["Permissions-Policy"]
    for feature in FEATURES_OFF:
        assert f"{feature}=()" in policy, policy
    assert headers.get("Content-Security-Policy") == csp
    assert "unsafe-" not in csp
    assert "Strict-Transport-Security" not in headers  # plain HTTP: the tests' default
    assert not cors_headers(response)
    if csp == PAGE_CSP:
        assert response.mimetype == "text/html"
        assert not REFUSED.search(response.get_data(as_text=True))


def test_a_rider_page(web, partner_api):
    partner_api.post_event(shift("s1"))  # a chart, a level bar and a badge's progress
    response = web.get("/m/")
    assert response.status_code == 200
    assert 'role="progressbar"' in response.get_data(as_text=True)
    assert_secure(response, PAGE_CSP)
    for path in ("/m/badges", "/m/history", "/m/boards", "/m/rewards", "/m/certificate"):
        page = web.get(path)
        assert page.status_code == 200, path
        assert_secure(page, PAGE_CSP)


def test_a_console_page(app_ctx, orgs):
    ConsoleUserFactory(username="dt-admin", org_code="sx.dt", role="admin")
    staff = console_sign_in(app_ctx, "dt-admin")
    for path in ("/console/", "/console/verify", "/console/rules", "/console/emergencies"):
        response = staff.client.get(path)
        assert response.status_code == 200, path
        assert_secure(response, PAGE_CSP)
    assert_secure(app_ctx.test_client().get("/console/login"), PAGE_CSP)


def test_the_api_docs_page_and_its_stylesheet(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert_secure(response, PAGE_CSP)
    sheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', response.get_data(as_text=True))
    assert sheet and sheet.group(1).startswith("/api/docs/static/api_docs.css?v=")
    css = client.get(sheet.group(1))
    assert css.status_code == 200 and css.mimetype == "text/css" and b".op" in css.data
    assert_secure(css, OTHER_CSP)


def test_a_json_response(partner_api, rider):
    response = partner_api.get_member(rider)
    assert response.status_code == 200 and response.is_json
    assert_secure(response, OTHER_CSP)
    assert_secure(partner_api.client.get("/api/openapi.json"), OTHER_CSP)


def test_error_pages_and_errors(client, web, monkeypatch):
    rider_404 = client.get("/m/no-such-page")
    assert rider_404.status_code == 404
    assert_secure(rider_404, PAGE_CSP)
    console_404 = client.get("/console/no-such-page")
    assert console_404.status_code == 404
    assert_secure(console_404, PAGE_CSP)
    signed_out = client.get("/m/")
    assert signed_out.status_code == 401
    assert_secure(signed_out, PAGE_CSP)
    api_404 = client.get("/api/v1/nothing")
    assert api_404.status_code == 404 and api_404.is_json
    assert_secure(api_404, OTHER_CSP)

    from app.web import charts

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(charts, "bars", broken)  # the home page draws its chart: a 500 page
    crashed = web.get("/m/")
    assert crashed.status_code == 500
    assert_secure(crashed, PAGE_CSP)


def test_strict_transport_security_only_over_https(client, app, monkeypatch):
    assert "Strict-Transport-Security" not in client.get("/api/docs").headers
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    for path in ("/api/docs", "/api/v1/nothing"):
        assert client.get(path).headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_header_a_view_set_is_kept(app_ctx):
    response = add_headers(
        Response(
            "<p>framed on purpose</p>",
            mimetype="text/html",
            headers={"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "sandbox"},
        )
    )
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["Referrer-Policy"] == "no-referrer"  # the others are added


def _templates() -> list[Path]:
    found = sorted(path for folder in TEMPLATE_DIRS for path in folder.rglob("*.html"))
    assert len(found) > 30  # the scan sees them all: the rider pages, the console, the API docs
    return found


@pytest.mark.parametrize("path", _templates(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_has_an_inline_style_or_a_script(path):
    text = path.read_text(encoding="utf-8")
    found = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0).strip()}"
        for m in REFUSED.finditer(text)
    ]
    assert not found, "the Content-Security-Policy refuses these; use a class in a stylesheet"


def test_html_made_in_python_has_no_inline_style_either():
    makers = [p for p in (ROOT / "app").rglob("*.py") if "Markup(" in p.read_text(encoding="utf-8")]
    assert ROOT / "app" / "web" / "charts.py" in makers  # the charts' SVG
    for path in makers:
        assert not REFUSED.search(path.read_text(encoding="utf-8")), path.relative_to(ROOT)


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/members/r1", "/m/", "/console/login"])
def test_cors_is_closed_a_preflight_gets_no_allow_headers(client, partner_api, rider, path):
    preflight = client.options(
        path,
        headers={
            "Origin": "https://elsewhere.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code < 500
    assert not cors_headers(preflight)
    # nor an ordinary cross-origin request, with the partner's own key
    sent = client.get(path, headers={**partner_api.headers, "Origin": "https://elsewhere.example"})
    assert sent.status_code < 500
    assert not cors_headers(sent)
