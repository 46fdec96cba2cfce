"""Headless Chromium (Debian's, at /usr/bin/chromium) driven by Playwright. Playwright
cannot download its own browser here; `make test` installs Debian's when it is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.quality import CspGuard, route_of
from tests.figures import record

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives Chromium: `browser`, and `slow` (it starts a
    browser process and a live server), so `-m "not slow"` leaves them out."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def _csp_tally() -> Iterator[dict[str, Any]]:
    """What the CSP check covered over the whole run: every route a browser test loaded
    a page of, and every violation; recorded for docs/reliability.md."""
    tally: dict[str, Any] = {"routes": set(), "loads": 0, "violations": 0}
    yield tally
    if tally["loads"]:
        record(
            "limits",
            csp_pages_checked=len(tally["routes"]),
            csp_page_loads=tally["loads"],
            csp_violations=tally["violations"],
        )


@pytest.fixture(autouse=True)
def _no_csp_violation(request: pytest.FixtureRequest, _csp_tally: dict[str, Any]) -> Iterator[None]:
    """Every browser test fails on any Content-Security-Policy violation, on any page of
    any context it opens (the `page` fixture, `signed_in_page`, a second customer's
    window), whether or not the test calls `check_page`."""
    if "browser" not in request.fixturenames:
        yield
        return
    browser: Browser = request.getfixturevalue("browser")
    guard = CspGuard()

    new_context, new_page = browser.new_context, browser.new_page

    def watched_context(*args: object, **kwargs: object) -> BrowserContext:
        return guard.attach(new_context(*args, **kwargs))  # type: ignore[arg-type]

    def watched_page(*args: object, **kwargs: object) -> Page:
        page = new_page(*args, **kwargs)  # type: ignore[arg-type]
        guard.attach(page.context)
        return page

    browser.new_context = watched_context  # type: ignore[method-assign]
    browser.new_page = watched_page  # type: ignore[method-assign]
    try:
        yield
    finally:
        del browser.new_context, browser.new_page
        tally = _csp_tally
        tally["routes"].update(route_of(url) for url in guard.pages_seen)
        tally["loads"] += guard.loads
        tally["violations"] += len(guard.violations)
    assert guard.violations == [], "CSP violations:\n" + "\n".join(guard.violations)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
