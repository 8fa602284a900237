"""Rate limits (flask-limiter): the partner API per partner, login links and console logins
per client address.

Counters live in Redis with REDIS_URL (shared by every process), else in the process. A
refused request gets 429 with ``Retry-After`` (and the ``X-RateLimit-*`` headers): the API's
JSON error ``rate_limited``, or the readable page on the rider pages and the console. When
Redis cannot be reached the limits are skipped, not the requests.

What a limit costs a request is one Redis round trip per window (RATE_LIMIT_PARTNER holds one
by default): the headers are computed for refused requests only, where flask-limiter would
read every window's state back from Redis (two more round trips) on every response.
"""

from __future__ import annotations

import time

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from .errors import AppError

# endpoints limited per client address, with the methods counted
LOGIN_ENDPOINTS = {"web.login": {"GET"}, "console.login": {"POST"}}


def partner_key() -> str:
    """The partner a request is counted against: authenticate it now (the API blueprints'
    own ``require_partner`` then finds it done). A request that fails to
    authenticate is counted against its address and refused by ``require_partner``."""
    from .api.auth import require_partner

    try:
        require_partner()
    except AppError:
        return f"anonymous:{get_remote_address()}"
    return f"partner:{request.pp_partner.code}"


def _not_a_login() -> bool:
    return request.method not in LOGIN_ENDPOINTS.get(request.endpoint or "", ())


def init_app(app: Flask) -> None:
    """Build this app's limiter (one per app: its counters and storage are the app's) and put
    the limits on the API blueprints and the login endpoints."""
    from . import api, console, web

    config = app.config
    config.setdefault("RATELIMIT_STORAGE_URI", config.get("REDIS_URL") or "memory://")
    config.setdefault("RATELIMIT_STRATEGY", "fixed-window")  # one INCR per request
    # the headers only on a refusal (below): on every response they cost two round trips
    config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)  # Redis down: serve, unlimited
    config.setdefault("RATELIMIT_KEY_PREFIX", "pp:rl")
    limiter = Limiter(get_remote_address, app=app)
    app.extensions["pioneer.limiter"] = limiter
    # read per request, so a change of the configuration (or a test's) takes effect at once
    partner_limit = limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT_PARTNER"],
        scope="partner-api",
        key_func=partner_key,
        error_message="too many requests from this partner",
    )
    for blueprint in api.blueprints():
        partner_limit(blueprint)
    login_limit = limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT_LOGIN"],
        scope="login",
        exempt_when=_not_a_login,
        error_message="too many sign-in attempts from this address",
    )
    login_limit(web.bp)
    login_limit(console.bp)

    @app.after_request
    def _refusal_headers(response):
        """``Retry-After`` and ``X-RateLimit-*`` on a 429 of the limiter."""
        current = limiter.current_limit
        if response.status_code != 429 or current is None or not limiter.enabled:
            return response
        try:
            reset_at = current.reset_at
            headers = response.headers
            headers["X-RateLimit-Limit"] = str(current.limit.amount)
            headers["X-RateLimit-Remaining"] = str(current.remaining)
            headers["X-RateLimit-Reset"] = str(reset_at)
            headers["Retry-After"] = str(max(1, int(reset_at - time.time())))
        except Exception:  # storage gone since: the 429 stands without them
            pass
        return response
