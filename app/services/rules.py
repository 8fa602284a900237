"""The rule set the service scores with: loaded once, replaced only by a good one.

Rules come from ``RULES_DIR`` until a version is published (``publish``): then from the
database, where every published version is kept with all its files. Each serving process looks
for a newer published version before a request, at most every ``RULES_POLL_SECONDS``, and
switches to it as a whole, so every process scores with the version in force within that time;
any version a ledger entry names can be loaded again (``load_version``). A worker or command
takes the version in force when it first needs rules.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..engine import LoadResult, RuleSet, load_ruleset
from ..errors import Invalid, Unavailable
from ..extensions import db
from ..models import RuleVersion
from ..models.base import utcnow

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1024 * 1024


class RulesRegistry:
    """Per-app holder of the current ``RuleSet``. Loading is lazy (no I/O in the factory)
    and all or nothing: a directory with errors never replaces the last good rule set."""

    def __init__(self, directory: str, timezone: str, poll_seconds: float = 5.0):
        self.directory = directory
        self.timezone = timezone
        self.poll_seconds = poll_seconds
        self._ruleset: RuleSet | None = None
        self._lock = threading.Lock()
        self._next_poll = 0.0
        self._published = False  # whether the rule set loaded is a published version
        self._poll_engine = None
        self.last_result: LoadResult | None = None

    def current(self) -> RuleSet:
        if self._ruleset is None:
            self.poll()  # a published version, if there is one
        if self._ruleset is None:
            with self._lock:
                if self._ruleset is None:
                    self.reload()
        if self._ruleset is None:
            raise Unavailable("the rules could not be loaded", code="rules_unavailable")
        return self._ruleset

    def reload(self, directory: str | None = None) -> LoadResult:
        """Load ``directory`` (default: RULES_DIR); install it only if it has no errors."""
        result = load_ruleset(directory or self.directory, self.timezone)
        self.last_result = result
        if result.ruleset is not None:
            self._ruleset, self._published = result.ruleset, False
            log.info("rules version %s loaded", result.ruleset.version)
        else:
            for d in result.errors[:20]:
                log.error("rules: %s", d)
        return result

    def _engine(self):
        if self._poll_engine is None:
            uri = current_app.config["SQLALCHEMY_DATABASE_URI"]
            options = current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
            # one connection kept (a new one every poll costs a PostgreSQL backend's start)
            pool = {"poolclass": NullPool} if uri.startswith("sqlite") else {
                "pool_size": 1, "max_overflow": 2, "pool_pre_ping": True}  # fmt: skip
            self._poll_engine = create_engine(
                uri, connect_args=options.get("connect_args", {}), **pool
            )
        return self._poll_engine

    def poll_due(self) -> None:
        """Poll if the interval has passed: called before a request takes any connection
        (a request holding one could otherwise wait for a second on a small pool)."""
        if self._next_poll <= time.monotonic():
            self.poll()

    def poll(self) -> None:
        """Switch to the newest published version if it is not the one loaded."""
        self._next_poll = time.monotonic() + self.poll_seconds
        try:
            # a connection of its own, outside the app's pool: a request holding a pooled
            # connection must never wait for a second one; read-only, so on SQLite a plain
            # BEGIN that takes no write lock (extensions.py)
            with self._engine().connect().execution_options(read_only=True) as conn:
                newest = (
                    select(RuleVersion.version).order_by(RuleVersion.published_at.desc()).limit(1)
                )
                version = conn.scalar(newest)
                if version is None or (
                    self._ruleset is not None and self._ruleset.version == version
                ):
                    files = None  # nothing new: the files (the rules' whole text) stay there
                else:
                    files = conn.scalar(
                        select(RuleVersion.files).where(RuleVersion.version == version)
                    )
        except SQLAlchemyError:  # no database yet (before `db upgrade`), or it is down
            return
        if version is None:
            if self._published:  # the published versions are gone (a restored database)
                with self._lock:
                    self.reload()
            return
        if files is None:
            return
        with self._lock:
            ruleset = materialise(files, self.timezone)
            if ruleset is not None:
                self._ruleset, self._published = ruleset, True
                log.info("rules version %s (published) loaded", ruleset.version)


@contextlib.contextmanager
def as_directory(files: dict[str, str]):
    """A temporary directory holding ``files`` (name → text), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pp-rules-") as tmp:
        for name, text in files.items():
            (Path(tmp) / Path(name).name).write_text(text, encoding="utf-8")
        yield tmp


def materialise(files: dict[str, str], timezone: str) -> RuleSet | None:
    """Load a stored version's files."""
    with as_directory(files) as directory:
        return load_ruleset(directory, timezone).ruleset


def load_version(version: str) -> RuleSet | None:
    """A published version, loaded again (for explanations and recalculation)."""
    stored = db.session.get(RuleVersion, version)
    if stored is None:
        return None
    return materialise(stored.files, current_app.config["APP_TIMEZONE"])


def _newest(what):
    return db.session.scalar(select(what).order_by(RuleVersion.published_at.desc()).limit(1))


def newest_published() -> RuleVersion | None:
    return _newest(RuleVersion)


def version_in_force() -> str:
    """The version new events are scored with: the newest published (its version only, not
    its files), else RULES_DIR's."""
    return _newest(RuleVersion.version) or current_rules().version


def files_in_force() -> dict[str, str]:
    """The files (name → text) of the version in force."""
    row = newest_published()
    if row is not None:
        return dict(row.files)
    return {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(Path(registry().directory).iterdir())
        if path.is_file() and path.suffix in (".yaml", ".yml")
    }


def publish_files(files: dict[str, str], by: str, note: str | None = None) -> RuleSet:
    """``publish`` for a set of files (name → text) rather than a directory."""
    with as_directory(files) as directory:
        return publish(directory, by, note)


def publish(directory: str, by: str, note: str | None = None) -> RuleSet:
    """Check ``directory`` and make it the version in force for every process (within the
    poll interval; at once in this one). Publishing a version again makes it current again (a
    rollback). ``Invalid`` lists the errors of a directory that does not load; nothing is
    stored then. The caller commits."""
    result = load_ruleset(directory, current_app.config["APP_TIMEZONE"])
    if result.ruleset is None:
        raise Invalid(
            f"{directory}: the rules have errors; nothing was published",
            {"errors": [str(d) for d in result.errors[:50]]},
            "rules_invalid",
        )
    files = {}
    for path in sorted(Path(directory).iterdir()):
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            if path.stat().st_size > MAX_FILE_BYTES:
                raise Invalid(f"{path.name} is larger than {MAX_FILE_BYTES} bytes")
            files[path.name] = path.read_text(encoding="utf-8")
    ruleset = result.ruleset
    stored = db.session.get(RuleVersion, ruleset.version)
    if stored is None:
        db.session.add(RuleVersion(version=ruleset.version, files=files, published_by=by,
                                   note=note))  # fmt: skip
    else:
        stored.published_at, stored.published_by, stored.note = utcnow(), by, note
    db.session.flush()
    reg = registry()
    reg._ruleset, reg._published = ruleset, True  # this process at once; others at their poll
    reg._next_poll = time.monotonic() + reg.poll_seconds
    return ruleset


def published() -> list[RuleVersion]:
    return list(db.session.scalars(select(RuleVersion).order_by(RuleVersion.published_at.desc())))


def init_app(app: Flask) -> None:
    app.extensions["pioneer.rules"] = RulesRegistry(
        app.config["RULES_DIR"], app.config["APP_TIMEZONE"], app.config["RULES_POLL_SECONDS"]
    )
    app.before_request(_poll_due)


def _poll_due() -> None:
    registry().poll_due()


def registry() -> RulesRegistry:
    return current_app.extensions["pioneer.rules"]


def current_rules() -> RuleSet:
    return registry().current()
