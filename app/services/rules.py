"""The rule set the service scores with: loaded once, replaced only by a good one."""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app

from ..engine import LoadResult, RuleSet, load_ruleset
from ..errors import Unavailable

log = logging.getLogger(__name__)


class RulesRegistry:
    """Per-app holder of the current ``RuleSet``. Loading is lazy (no I/O in the factory)
    and all or nothing: a directory with errors never replaces the last good rule set."""

    def __init__(self, directory: str, timezone: str):
        self.directory = directory
        self.timezone = timezone
        self._ruleset: RuleSet | None = None
        self._lock = threading.Lock()
        self.last_result: LoadResult | None = None

    def current(self) -> RuleSet:
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
            self._ruleset = result.ruleset
            log.info("rules version %s loaded", result.ruleset.version)
        else:
            for d in result.errors[:20]:
                log.error("rules: %s", d)
        return result


def init_app(app: Flask) -> None:
    app.extensions["pioneer.rules"] = RulesRegistry(
        app.config["RULES_DIR"], app.config["APP_TIMEZONE"]
    )


def registry() -> RulesRegistry:
    return current_app.extensions["pioneer.rules"]


def current_rules() -> RuleSet:
    return registry().current()
