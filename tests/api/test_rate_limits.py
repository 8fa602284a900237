"""Rate limits: per partner on the API, per address on login links and console logins; 429
with Retry-After, in the API's error shape or as a page."""

from __future__ import annotations

import pytest

from ..partner_api import shift


@pytest.fixture
def limit(app_ctx):
    """Set a rate limit for the test (they are read per request)."""
    saved = {k: app_ctx.config[k] for k in ("RATE_LIMIT_PARTNER", "RATE_LIMIT_LOGIN")}

    def set_limit(name: str, value: str) -> None:
        app_ctx.config[name] = value

    yield set_limit
    app_ctx.config.update(saved)


def test_a_partner_over_its_limit_gets_429_with_retry_after(partner_api, other_api, rider, limit):
    limit("RATE_LIMIT_PARTNER", "3/minute")
    answers = [partner_api.get_member("r1") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    # counted, but a request let through carries no headers: they would cost Redis round trips
    assert not any(h.startswith("X-RateLimit") for a in answers for h, _ in a.headers)
    refused = partner_api.post_event(shift("e1"))
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "rate_limited"
    assert set(refused.json["error"]) == {"code", "message", "details"}
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "3"
    # nothing was stored for the refused event; another partner has its own budget
    assert other_api.get_member("r1").status_code == 404
    limit("RATE_LIMIT_PARTNER", "100/minute")
    assert partner_api.post_event(shift("e1")).status_code == 201


def test_a_bad_key_is_refused_401_and_counted_by_address(client, partner_api, limit):
    limit("RATE_LIMIT_PARTNER", "2/minute")
    bad = {"Authorization": "Bearer pp_nothere1_" + "x" * 30}
    codes = [client.get("/api/v1/members/r1", headers=bad).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    assert partner_api.get_member("r1").status_code == 404  # the partner is not affected


def test_login_links_are_limited_per_address_with_a_page(client, limit):
    limit("RATE_LIMIT_LOGIN", "2/minute")
    codes = [client.get(f"/m/login/made-up-{i}").status_code for i in range(3)]
    assert codes == [403, 403, 429]
    page = client.get("/m/login/made-up-9")
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Retry-After" in page.headers
    # other rider pages are not counted as logins
    assert client.get("/m/lang/en").status_code == 302


def test_console_logins_are_limited_per_address(client, limit):
    limit("RATE_LIMIT_LOGIN", "2/minute")
    assert client.get("/console/login").status_code == 200  # the form is not a login
    codes = [
        client.post("/console/login", data={"username": "x", "password": "y"}).status_code
        for _ in range(3)
    ]
    assert codes[2] == 429 and 429 not in codes[:2]  # (no CSRF token: 400, still counted)
    assert client.get("/console/login").status_code == 200
