"""Security headers on every response (issue #8).

Pages get a strict Content-Security-Policy: stylesheets, images and fonts from this origin only
(and ``data:`` images, for the empty favicon), no script at all, forms posted only here, never
framed. Inline styles are refused too, so templates name their styles by class, and a progress
bar's fill is an SVG rect whose ``width`` attribute carries the share. Everything else (JSON,
CSS, images) gets a policy that allows nothing. CORS stays closed: no response carries an
``Access-Control-Allow-*`` header, so browsers refuse other origins' reads and preflights.

A header a view set itself is left as it is.
"""

from __future__ import annotations

from flask import Flask, Response, current_app

PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"
# powerful browser features no page uses: off, for this origin and anything it might embed
PERMISSIONS = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), payment=(), usb=()"
)

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a rider's login link carries its token in the URL
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": PERMISSIONS,
}
HSTS = "max-age=31536000"  # a year; only where the session cookie is Secure (served over HTTPS)


def add_headers(response: Response) -> Response:
    """An ``after_request`` hook: every header above that the response does not have yet, the
    page policy for HTML and the allow-nothing one for the rest, HSTS only over HTTPS."""
    headers = response.headers
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    csp = PAGE_CSP if response.mimetype == "text/html" else OTHER_CSP
    headers.setdefault("Content-Security-Policy", csp)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
