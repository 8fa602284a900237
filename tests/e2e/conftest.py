"""End-to-end fixtures: the app served on a free local port, and headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright's Python package).

In CI (``CI=true``) a missing browser fails the tests; elsewhere they are skipped, since
``scripts/test`` installs the browser only in CI (``scripts/lib/browser.sh``).

Every browser context a test opens listens to the console: a resource or an inline style the
Content-Security-Policy refused (or a policy header the browser could not read) fails the test.
Screenshots go to ``screenshots/`` (git-ignored), or to the folder ``E2E_SCREENSHOTS`` names."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(
    os.environ.get("E2E_SCREENSHOTS")
    or Path(__file__).resolve().parent.parent.parent / "screenshots"
)  # git-ignored
PHONE = {"width": 360, "height": 800}
DESKTOP = {"width": 1280, "height": 800}
# what Chromium writes to the console when a policy refuses something, or cannot be read
POLICY_MESSAGE = re.compile(r"Content.Security.Policy|Refused to|Permissions.Policy", re.I)


@pytest.fixture
def live_server(app_ctx):
    """The test app on 127.0.0.1:<free port>, in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app_ctx, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: scripts/test installs it in CI")
        pytest.skip(f"{CHROMIUM} is not installed (scripts/lib/browser.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def watch_policies(target, violations: list[str]) -> None:
    """Add to ``violations`` every console message of ``target`` (a page or a browser
    context) that says a security policy refused something, with the page's URL."""

    def seen(message) -> None:
        if POLICY_MESSAGE.search(message.text):
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    target.on("console", seen)


@pytest.fixture
def csp_violations() -> list[str]:
    """The policy violations the browser reported in the test's contexts, so far."""
    return []


@pytest.fixture
def new_context(browser, csp_violations):
    """Open a browser context (a fresh profile: no cookies, no cache), closed after the test:
    ``new_context(viewport, **options)``; Chinese unless ``locale`` is given, and a short
    default timeout so that a failing wait fails fast. A policy violation in any of them
    fails the test (at its end, if the test did not look at ``csp_violations`` itself)."""
    contexts = []

    def open_(viewport=PHONE, **options):
        options.setdefault("locale", "zh-CN")
        context = browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(10_000)
        watch_policies(context, csp_violations)
        contexts.append(context)
        return context

    yield open_
    for context in contexts:
        context.close()
    assert not csp_violations, csp_violations
