"""Every page staff and customers open, the error pages too, fits a 390 px phone and a
laptop: nothing scrolls sideways, and the strict Content-Security-Policy blocks nothing (all
styling is in tranche.css). A screenshot of each page at each width lands in var/shots/
for a person to look at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, make_project
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path(__file__).resolve().parents[2] / "var" / "shots"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 800}


@dataclass
class Scene:
    project_id: int
    sent: Invoice


@pytest.fixture
def scene(admin: User, customer_a: Customer, live_server: Any, settings: Any) -> Scene:
    """A project with a long name, one invoice sent (with a payment link on the live
    server) and one draft waiting for review."""
    settings.BASE_URL = live_server.url
    project = make_project(
        actor=admin,
        customer=customer_a,
        title="Kitchen extension and garden studio for the Harbour Road house",
        total="128450.00",
    )
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    draft_for(project, 2, admin)
    sent.refresh_from_db()
    assert sent.payment_link
    return Scene(project_id=project.pk, sent=sent)


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
@pytest.mark.parametrize("persona", ["staff", "alice"])
def test_no_page_scrolls_sideways_and_the_csp_blocks_nothing(
    persona: str,
    viewport: dict[str, int],
    browser: Browser,
    live_server: Any,
    scene: Scene,
    request: pytest.FixtureRequest,
) -> None:
    user: User = request.getfixturevalue(persona)
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(15_000)
    blocked: list[str] = []
    page.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1")

    pages = {
        "home": ("/", 200),
        "project": (f"/projects/{scene.project_id}/", 200),
        "financials": ("/financials/", 200),
        "not-found": ("/no-such-page/", 404),
        "admin": ("/admin/", 403),
    }
    if user.is_customer:
        pages["pay"] = (scene.sent.payment_link.removeprefix(live_server.url), 200)

    SHOTS.mkdir(parents=True, exist_ok=True)
    overflow: dict[str, int] = {}
    try:
        for name, (path, status) in pages.items():
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None
            assert response.status == status, path
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if scroll > inner:
                overflow[name] = scroll
            page.screenshot(
                path=str(SHOTS / f"{persona}-{viewport['width']}-{name}.png"), full_page=True
            )
    finally:
        context.close()

    assert overflow == {}, f"pages wider than {viewport['width']} px"
    assert blocked == []
