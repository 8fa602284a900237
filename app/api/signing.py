"""Optional request signing for partners: HMAC-SHA256 over the timestamp and the body.

A signed request carries, besides ``Authorization: Bearer <key>``::

    X-PP-Timestamp: <unix seconds>
    X-PP-Signature: v1=<hex of HMAC-SHA256(signing secret, "<timestamp>." + body)>

The signing secret belongs to the API key (``flask partners signing-secret <key id>``), so a
partner rotating keys has two keys, and two secrets, active at once until it revokes the old
one. A timestamp more than SIGNATURE_WINDOW_SECONDS away from the server's clock is refused,
and so is a signature seen before within that window (kept in Redis), so a captured request
cannot be replayed. Signatures are compared in constant time.

A partner with ``signing_required`` must sign every request; any other partner may, and a
signature it sends is checked all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import redis
from flask import current_app, request

from ..errors import Unauthorized
from ..redis_client import get_redis
from ..services.partners import PartnerInfo, signing_secret

TIMESTAMP = "X-PP-Timestamp"
SIGNATURE = "X-PP-Signature"
log = logging.getLogger(__name__)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-PP-Signature`` value for ``body`` sent at ``timestamp`` (what partners compute)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def check_signature(partner: PartnerInfo, key_id: str) -> None:
    """Refuse (401) a request whose signature is missing when required, stale, wrong or
    replayed."""
    stamp = request.headers.get(TIMESTAMP)
    given = request.headers.get(SIGNATURE)
    if stamp is None and given is None:
        if partner.signing_required:
            raise Unauthorized(
                f"this partner must sign its requests: send {TIMESTAMP} and {SIGNATURE}",
                {"headers": [TIMESTAMP, SIGNATURE]},
                "missing_signature",
            )
        return
    window = current_app.config["SIGNATURE_WINDOW_SECONDS"]
    try:
        moment = int(stamp or "")
    except ValueError:
        raise Unauthorized(
            f"{TIMESTAMP} must be the time in whole seconds since 1970 (UTC)",
            {"header": TIMESTAMP},
            "bad_signature",
        ) from None
    skew = abs(time.time() - moment)
    if skew > window:
        raise Unauthorized(
            f"the signature's timestamp is more than {window} seconds from the server's clock",
            {"window_seconds": window, "server_time": int(time.time())},
            "stale_signature",
        )
    expected = sign(signing_secret(key_id), moment, request.get_data(cache=True))
    if not hmac.compare_digest(expected.encode(), (given or "").strip().encode()):
        raise Unauthorized(
            "the request signature does not match its timestamp and body",
            {"header": SIGNATURE, "scheme": "v1=hex(HMAC-SHA256(secret, timestamp + '.' + body))"},
            "bad_signature",
        )
    if not _first_sighting(expected, window):
        raise Unauthorized(
            "this signed request was sent before: sign each request with a new timestamp",
            {},
            "replayed_signature",
        )


def _first_sighting(signature: str, window: int) -> bool:
    """Remember ``signature`` for twice the window; False if it was already there. With Redis
    down the check is skipped (logged): the window still bounds a replay, and a replayed event
    is stored once anyway (its id is idempotent)."""
    try:
        return bool(get_redis().set(f"pp:sig:{signature[3:]}", 1, nx=True, ex=2 * window))
    except redis.RedisError as exc:
        log.warning("replay check skipped, Redis unavailable: %s", exc.__class__.__name__)
        return True
