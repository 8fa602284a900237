"""Partner authentication: ``Authorization: Bearer <key>`` on every API call."""

from __future__ import annotations

from flask import current_app, g, request

from ..errors import Unauthorized
from ..services.partners import KeyCache, authenticate, key_id_of
from .signing import check_signature


def require_partner() -> None:
    """Blueprint ``before_request``: set ``g.partner`` or answer 401 (a missing or bad key, or
    a missing, stale, wrong or replayed signature; see signing.py). Idempotent per request:
    the rate limiter (app/limits.py) authenticates first to count requests per partner."""
    if getattr(request, "pp_partner", None) is not None:  # request-scoped: g may outlive it
        g.partner = request.pp_partner
        return
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("send your API key as Authorization: Bearer <key>", code="missing_key")
    cache = current_app.extensions.setdefault(
        "pioneer.keys", KeyCache(current_app.config["PARTNER_KEY_CACHE_SECONDS"])
    )
    partner = authenticate(key.strip(), cache)
    if partner is None:
        raise Unauthorized("the API key is not valid", code="invalid_key")
    check_signature(partner, key_id_of(key.strip()))
    g.partner = request.pp_partner = partner


SECURITY = [{"partnerKey": []}]
