"""Partner authentication: ``Authorization: Bearer <key>`` on every API call."""

from __future__ import annotations

from flask import current_app, g, request

from ..errors import Unauthorized
from ..services.partners import KeyCache, authenticate


def require_partner() -> None:
    """Blueprint ``before_request``: set ``g.partner`` or answer 401."""
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
    g.partner = partner


SECURITY = [{"partnerKey": []}]
