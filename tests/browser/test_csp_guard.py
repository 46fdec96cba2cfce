"""The CSP check every browser test runs under (tests/browser/conftest.py) is itself
proven: an inline script, an inline event handler and an inline style attribute on a
real page of the app are each reported, and a clean page reports nothing."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser

from tests.browser.quality import CspGuard


def test_the_guard_reports_inline_script_handler_and_style(
    browser: Browser, live_server: Any
) -> None:
    guard = CspGuard()
    # The original method, not the one the autouse check wraps: these violations are
    # meant, and must not fail this test through that check.
    context = guard.attach(type(browser).new_context(browser))
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.wait_for_load_state()
    assert guard.violations == []

    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.ran = true";
          document.body.appendChild(script);
          const button = document.createElement("button");
          button.setAttribute("onclick", "window.clicked = true");
          document.body.appendChild(button);
          button.click();
          const box = document.createElement("div");
          box.setAttribute("style", "color: red");
          document.body.appendChild(box);
        }"""
    )
    page.wait_for_timeout(300)
    assert page.evaluate("[window.ran, window.clicked]") == [None, None]
    joined = "\n".join(guard.violations)
    assert "script-src-elem" in joined  # the inline <script>
    assert "script-src-attr" in joined  # the onclick handler
    assert "style-src-attr" in joined  # the style attribute
    assert guard.loads == 1
    context.close()
