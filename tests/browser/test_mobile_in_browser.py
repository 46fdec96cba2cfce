"""Every page staff and customers open, the error pages too, fits a 390 px phone and a
laptop: nothing scrolls sideways, and the strict Content-Security-Policy blocks nothing (all
styling is in tranche.css), and axe finds no serious accessibility flaw. A screenshot of
each page at each width lands in var/screenshots/ for a person to look at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.billing.helpers import draft_for
from tests.browser.quality import VIEWPORTS, check_page, signed_in_page
from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send

pytestmark = pytest.mark.django_db(transaction=True)


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


@pytest.mark.parametrize("viewport", ["phone", "laptop"])
@pytest.mark.parametrize("persona", ["staff", "alice"])
def test_every_page_fits_the_screen_passes_axe_and_the_csp_blocks_nothing(
    persona: str,
    viewport: str,
    browser: Browser,
    live_server: Any,
    scene: Scene,
    request: pytest.FixtureRequest,
) -> None:
    user: User = request.getfixturevalue(persona)
    page = signed_in_page(browser, live_server, user, VIEWPORTS[viewport])
    pages = {
        "home": ("/", 200),
        "projects": ("/projects/", 200),
        "project": (f"/projects/{scene.project_id}/", 200),
        "financials": ("/financials/", 200),
        "not-found": ("/no-such-page/", 404),
        "admin": ("/admin/", 403),
    }
    if user.is_customer:
        pages["pay"] = (scene.sent.payment_link.removeprefix(live_server.url), 200)

    failures: dict[str, str] = {}
    try:
        for name, (path, status) in pages.items():
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None
            assert response.status == status, path
            try:
                check_page(page, f"{persona}-{name}")
            except AssertionError as exc:
                failures[name] = str(exc)
    finally:
        page.context.close()

    assert failures == {}
