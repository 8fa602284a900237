"""Languages of the pages: zh-CN by default, English by the rider's choice or the browser's.

Texts are flask-babel message catalogues: the source strings (msgids) are the Chinese texts,
and ``app/translations/en`` translates them (compiled by ``scripts/lib/venv.sh``). Dates and
numbers are formatted for the locale with flask-babel's ``format_*``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask, current_app, g, request, session
from flask_babel import (
    Babel,
    format_date,
    format_datetime,
    format_decimal,
    get_translations,
    refresh,
)

from ..engine.periods import zone

LANGUAGES = {"zh": "zh_Hans_CN", "en": "en"}  # what the switch offers -> babel locale
DEFAULT = "zh"
TRANSLATIONS = str(Path(__file__).resolve().parent.parent / "translations")

babel = Babel()


def language() -> str:
    """``zh`` or ``en``: the rider's choice, else the browser's preference, else Chinese."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(["zh", "zh-CN", "en"]) if request else None
    return "en" if best == "en" else DEFAULT


def _locale() -> str:
    return LANGUAGES[language()]


def _number(value) -> str:
    return format_decimal(value) if value is not None else ""


def _date(value) -> str:
    """A date or a moment as a local date, in the page's language."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return format_date(value.astimezone(zone(current_app.config["APP_TIMEZONE"])).date())
    return format_date(value)


# a day and a time no rider can misread: 2026年11月30日 21:04 / Nov 30, 2026, 21:04
DATETIME = {"zh": "yyyy年M月d日 HH:mm", "en": "MMM d, yyyy, HH:mm"}


def _datetime(value) -> str:
    return format_datetime(value, DATETIME[language()]) if value is not None else ""


def _fresh_locale() -> None:
    """flask-babel keeps the locale on ``g``: choose it again for every request (an app
    context can outlive a request, as in tests)."""
    refresh()


def _translations():
    """The request's catalogue, looked up once per request: flask-babel's own template
    callables look it up for every text (seven context lookups each, a few milliseconds a
    page). Kept where flask-babel's ``refresh()`` drops it, so a change of language within a
    request (the settings page) is followed."""
    ctx = g.get("_flask_babel")
    found = getattr(ctx, "babel_translations", None)
    if found is None:
        found = get_translations()
        ctx = g.get("_flask_babel")
        if ctx is not None:
            ctx.babel_translations = found
    return found


def init_app(app: Flask) -> None:
    app.before_request(_fresh_locale)
    app.jinja_env.filters["number"] = _number
    app.jinja_env.filters["date"] = _date
    app.jinja_env.filters["datetime"] = _datetime
    babel.init_app(
        app,
        default_locale=LANGUAGES[DEFAULT],
        default_translation_directories=TRANSLATIONS,
        default_timezone=app.config["APP_TIMEZONE"],
        locale_selector=_locale,
    )
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
