"""The checks every page a browser test visits must pass, in one place:

- axe-core (vendored, tests/browser/vendor/axe.min.js, MPL-2.0) finds no critical or
  serious accessibility violation;
- nothing scrolls sideways (a 390 px phone included);
- the Content-Security-Policy blocks nothing (collect console messages with `watch`);
- a full-page screenshot lands in var/screenshots/ for a person to look at.

    page = signed_in_page(browser, live_server, alice, PHONE)
    page.goto(live_server.url + "/")
    check_page(page, "customer-home")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.urls import Resolver404, resolve
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from tests.factories import PASSWORD
from tranche.accounts.models import User

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 800}
VIEWPORTS = {"phone": PHONE, "laptop": LAPTOP}


# Chromium logs every blocked resource, inline script, event handler or style attribute as
# a console error naming the "Content Security Policy"; the document's own
# securitypolicyviolation event is echoed to the console as well, so a violation reported
# only through the event is caught too. The init script runs through the DevTools
# protocol, which the page's CSP does not govern.
CSP_MARK = "Content Security Policy"
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("Content Security Policy violation (event): " + e.effectiveDirective
    + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


class CspGuard:
    """Collects every CSP violation of the contexts it is attached to. tests/browser's
    conftest attaches one to every context a test opens and fails the test on any."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.pages_seen: set[str] = set()
        self.loads = 0

    def attach(self, context: BrowserContext) -> BrowserContext:
        context.add_init_script(REPORT_VIOLATIONS)
        context.on("console", self._on_console)
        context.on("page", lambda page: page.on("load", lambda p: self._on_load(p)))
        for page in context.pages:
            page.on("load", lambda p: self._on_load(p))
        return context

    def _on_load(self, page: Page) -> None:
        # Pages of the app only: not about:blank, where tests show an email.
        if page.url.startswith(("http://", "https://")):
            self.loads += 1
            self.pages_seen.add(page.url)

    def _on_console(self, message: ConsoleMessage) -> None:
        if CSP_MARK in message.text:
            where = message.page.url if message.page else "?"
            source = message.location
            self.violations.append(
                f"{where}: {message.text} (from {source.get('url') or 'the page'}"
                f":{source.get('lineNumber', '?')})"
            )


def route_of(url: str) -> str:
    """The URL pattern a page's address matches (`invoices/<int:invoice_id>/`), so the
    same page of two objects counts once; the address itself when nothing matches."""
    path = urlsplit(url).path
    try:
        return resolve(path).route
    except Resolver404:
        return path


def watch(page: Page) -> list[str]:
    """Start collecting the CSP violations the page reports; returns the live list."""
    blocked: list[str] = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return blocked


def signed_in_page(
    browser: Browser, live_server: Any, user: User, viewport: dict[str, int] = LAPTOP
) -> Page:
    """A new browser context at `viewport`, signed in as `user` through the sign-in page.
    The page's CSP violations are collected on `page.csp_blocked` (see `check_page`)."""
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.csp_blocked = watch(page)  # type: ignore[attr-defined]
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def axe_violations(page: Page, impacts: tuple[str, ...] = ("critical", "serious")) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now, one line each.
    Evaluated through the DevTools protocol, so the page's CSP does not apply to axe."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)
    result = page.evaluate(
        "async () => JSON.stringify((await axe.run(document, {resultTypes: ['violations']}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}"
        for v in json.loads(result)
        if v["impact"] in impacts
    ]


def horizontal_overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0 when nothing scrolls sideways)."""
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return max(0, int(scroll) - int(inner))


def screenshot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    path = SHOTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_page(page: Page, name: str) -> None:
    """Screenshot the page, then assert: no serious accessibility violation, nothing wider
    than the window, nothing blocked by the CSP."""
    screenshot(page, name)
    assert axe_violations(page) == [], name
    assert horizontal_overflow(page) == 0, name
    assert getattr(page, "csp_blocked", []) == [], name
