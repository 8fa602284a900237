"""Console users: passwords kept as scrypt hashes, roles, and the subtree each one may see.

A user of ``sx.ty.xiaodian`` reads and changes only ``sx.ty.xiaodian`` and what is below it,
whatever URL they type; ``in_scope`` is the one check every console view and service uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select

from ..engine.ruleset import within
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import AuditEntry, ConsoleUser, Organisation, Role
from ..models.base import utcnow

SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~50 ms and 16 MiB per check on this machine
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD = 10

# what each role may do, besides reading its subtree
CAN = {
    Role.ADMIN: {"verify", "redeem_desk", "users", "emergency", "rules", "adjust", "appeals",
                 "erase"},
    Role.VERIFIER: {"verify", "appeals"},
    Role.STATION: {"redeem_desk"},
    Role.VIEWER: set(),
}  # fmt: skip


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **SCRYPT,
        salt=base64.b64encode(salt).decode(),
        digest=base64.b64encode(digest).decode(),
    )


def check_password(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(base64.b64decode(digest)),
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def in_scope(user: ConsoleUser, org_code: str | None) -> bool:
    """Whether ``org_code`` is the user's organisation or below it."""
    return bool(org_code) and within(org_code, user.org_code)


def in_subtree(column, org_code: str):
    """SQL for ``within``: ``column`` is ``org_code`` or below it. LIKE's wildcards are
    escaped (``_`` may be part of a code), and an index on the column serves it."""
    return (column == org_code) | column.startswith(org_code + ".", autoescape=True)


def may(user: ConsoleUser, action: str) -> bool:
    return action in CAN.get(Role(user.role), set())


def create_user(username: str, password: str, org_code: str, role: str, display_name: str = "",
                created_by: str = "cli") -> ConsoleUser:  # fmt: skip
    """A new console user (the caller commits); ``Invalid`` or ``Conflict`` says what is wrong."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise Invalid("a username has 3 to 64 characters: a-z, 0-9, '.', '_', '-'",
                      {"username": username})  # fmt: skip
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a password has at least {MIN_PASSWORD} characters")
    if role not in {r.value for r in Role}:
        raise Invalid(f"unknown role {role!r}; roles: {', '.join(r.value for r in Role)}",
                      {"role": role})  # fmt: skip
    if db.session.scalar(select(Organisation.id).where(Organisation.code == org_code)) is None:
        raise Invalid(f"unknown organisation {org_code!r}", {"org": org_code}, "unknown_org")
    if db.session.scalar(select(ConsoleUser.id).where(ConsoleUser.username == username)):
        raise Conflict(f"the username {username!r} is taken", {"username": username})
    user = ConsoleUser(username=username, display_name=display_name or username,
                       org_code=org_code, role=role, password_hash=hash_password(password),
                       created_by=created_by)  # fmt: skip
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(username: str, password: str) -> ConsoleUser | None:
    """The active user with this username and password, or None (the same time either way)."""
    user = db.session.scalar(
        select(ConsoleUser).where(ConsoleUser.username == username.strip().lower())
    )
    stored = user.password_hash if user is not None else _DUMMY
    ok = check_password(stored, password)
    if user is None or not ok or user.disabled_at is not None:
        return None
    return user


_DUMMY = hash_password(secrets.token_hex(16))  # checked for unknown usernames: no timing leak


def audit(user: ConsoleUser | None, org_code: str, action: str, target: str,
          before: dict | None = None, after: dict | None = None) -> None:  # fmt: skip
    """Record a console change (in the caller's transaction)."""
    entry = AuditEntry(
        user_id=user.id if user else None,
        username=user.username if user else "cli",
        org_code=org_code,
        action=action,
        target=target,
        before=before,
        after=after,
    )
    db.session.add(entry)


def users_of(admin: ConsoleUser) -> list[ConsoleUser]:
    """The console users of the admin's subtree, by organisation then username."""
    query = select(ConsoleUser).where(
        (ConsoleUser.org_code == admin.org_code)
        | ConsoleUser.org_code.startswith(admin.org_code + ".", autoescape=True)
    )
    return list(db.session.scalars(query.order_by(ConsoleUser.org_code, ConsoleUser.username)))


def user_in_scope(admin: ConsoleUser, user_id: int) -> ConsoleUser:
    """The console user, if in the admin's subtree; else ``NotFound`` (whether it exists or not)."""
    user = db.session.get(ConsoleUser, user_id)
    if user is None or not in_scope(admin, user.org_code):
        raise NotFound("no such console user", {"user": user_id})
    return user


def set_disabled(admin: ConsoleUser, user_id: int, disabled: bool) -> ConsoleUser:
    """Disable or enable a user of the admin's subtree, audited (the caller commits).

    ``NotFound`` outside the subtree; ``Invalid`` (code ``self``) when an admin would disable
    themselves, which could leave a subtree with nobody to manage it. Setting the state a user
    already has changes and records nothing.
    """
    user = user_in_scope(admin, user_id)
    if disabled and user.id == admin.id:
        raise Invalid("you cannot disable yourself", {"user": user_id}, "self")
    if (user.disabled_at is not None) == disabled:
        return user
    before = {"disabled": user.disabled_at is not None}
    user.disabled_at = utcnow() if disabled else None
    audit(admin, user.org_code, "user.disable" if disabled else "user.enable",
          f"user:{user.username}", before, {"disabled": disabled})  # fmt: skip
    db.session.flush()
    return user
