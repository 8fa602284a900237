"""Partners and their API keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import Partner, PartnerKey
from ..models.base import utcnow

KEY_PATTERN = re.compile(r"pp_([A-Za-z0-9]{8,32})_([A-Za-z0-9_-]{20,100})")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]


def create_partner(
    name: str,
    code: str | None = None,
    allowed_orgs: list[str] | None = None,
    allowed_types: list[str] | None = None,
) -> tuple[Partner, str]:
    """Create a partner with one API key; return the partner and the key (shown only once)."""
    code = code or slug(name)
    if not code:
        raise Invalid("a partner needs a code of letters or digits", {"code": code})
    if db.session.scalar(select(Partner).where(Partner.code == code)) is not None:
        raise Conflict(f"partner {code!r} exists already", {"code": code})
    partner = Partner(
        code=code,
        name=name,
        allowed_orgs=allowed_orgs or ["*"],
        allowed_types=allowed_types or ["*"],
    )
    db.session.add(partner)
    db.session.flush()
    return partner, add_key(partner)


def signing_secret(key_id: str) -> str:
    """The signing secret of API key ``key_id``: an HMAC of the key id under the server's
    PARTNER_SIGNING_KEY (default: derived from SECRET_KEY). Nothing is stored; changing
    PARTNER_SIGNING_KEY changes every partner's secret (docs/operations.md)."""
    key = (
        current_app.config["PARTNER_SIGNING_KEY"]
        or hmac.new(
            current_app.config["SECRET_KEY"].encode(), b"partner-signing", hashlib.sha256
        ).hexdigest()
    )
    digest = hmac.new(key.encode(), f"signing:{key_id}".encode(), hashlib.sha256).digest()
    return f"pps_{key_id}_{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def partner_by_code(code: str) -> Partner:
    partner = db.session.scalar(select(Partner).where(Partner.code == code))
    if partner is None:
        raise NotFound(f"no partner {code!r}", {"code": code})
    return partner


def revoke_key(key_id: str) -> PartnerKey:
    """Revoke an API key (and with it its signing secret). Other processes stop accepting it
    within PARTNER_KEY_CACHE_SECONDS."""
    row = db.session.scalar(select(PartnerKey).where(PartnerKey.key_id == key_id))
    if row is None:
        raise NotFound(f"no API key {key_id!r}", {"key_id": key_id})
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.flush()
    return row


def add_key(partner: Partner) -> str:
    """Give ``partner`` a new key (the old ones stay valid until revoked)."""
    key_id = secrets.token_hex(6)
    key = f"pp_{key_id}_{secrets.token_urlsafe(32)}"
    db.session.add(PartnerKey(partner_id=partner.id, key_id=key_id, key_hash=hash_key(key)))
    db.session.flush()
    return key


@dataclass(frozen=True)
class PartnerInfo:
    """What a request needs of its partner, cached with the key: no query per request."""

    id: int
    code: str
    name: str
    allowed_orgs: tuple[str, ...]
    allowed_types: tuple[str, ...]
    signing_required: bool = False

    may_report_for = Partner.may_report_for
    may_report_type = Partner.may_report_type


class KeyCache:
    """Partners by key id for a few seconds, so a request costs no query for its key.
    Revoking a key takes effect within ``ttl`` seconds."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._items: dict[str, tuple[float, str, PartnerInfo]] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> tuple[str, PartnerInfo] | None:
        item = self._items.get(key_id)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1], item[2]

    def put(self, key_id: str, key_hash: str, partner: PartnerInfo) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key_id] = (time.monotonic() + self.ttl, key_hash, partner)


def key_id_of(key: str) -> str | None:
    match = KEY_PATTERN.fullmatch(key or "")
    return match.group(1) if match else None


def authenticate(key: str, cache: KeyCache) -> PartnerInfo | None:
    """The active partner owning ``key``, or None. Compares hashes in constant time."""
    match = KEY_PATTERN.fullmatch(key or "")
    if match is None:
        return None
    key_id = match.group(1)
    found = cache.get(key_id)
    if found is None:
        row = db.session.execute(
            select(PartnerKey.key_hash, Partner)
            .join(Partner)
            .where(
                PartnerKey.key_id == key_id,
                PartnerKey.revoked_at.is_(None),
                Partner.active.is_(True),
            )
        ).first()
        if row is None:
            return None
        p = row.Partner
        info = PartnerInfo(
            p.id, p.code, p.name, tuple(p.allowed_orgs), tuple(p.allowed_types),
            p.signing_required,
        )  # fmt: skip
        found = (row.key_hash, info)
        cache.put(key_id, *found)
    if not hmac.compare_digest(found[0], hash_key(key)):
        return None
    return found[1]
