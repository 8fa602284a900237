"""Configuration: defaults, then environment variables, then what the caller passes.

Every variable is listed in the README's configuration table.
"""

from __future__ import annotations

import os

DEFAULTS: dict[str, object] = {
    "RULES_DIR": "rules",
    "APP_TIMEZONE": "Asia/Shanghai",
    "SECRET_KEY": "dev-only-change-me",
}

# Environment variables read at app creation (never at import).
ENVIRONMENT = ("RULES_DIR", "APP_TIMEZONE", "SECRET_KEY")


def load(config: dict, overrides: dict | None) -> None:
    """Fill a Flask ``config`` from defaults, the environment and ``overrides``, in that order."""
    config.update(DEFAULTS)
    for key in ENVIRONMENT:
        if key in os.environ:
            config[key] = os.environ[key]
    if overrides:
        config.update(overrides)
