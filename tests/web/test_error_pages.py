"""Error pages outside the API wear the site's design: header, brand, stylesheet."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import User
from tranche.core.http import server_error

pytestmark = pytest.mark.django_db

# The header shows the business's name (BUSINESS_NAME in the test environment).
BRAND = '<a class="brand" href="/">Harbour Build Co</a>'
STYLESHEET = "/static/web/tranche.css"


def test_a_visitor_at_an_unknown_address_gets_the_styled_404() -> None:
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert BRAND in page
    assert STYLESHEET in page
    assert "<h1>Page not found</h1>" in page


def test_a_signed_in_customer_at_an_unknown_address_gets_the_404_with_their_nav(
    alice: User,
) -> None:
    response = signed_in(alice).get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert BRAND in page
    assert "alice@acme.example" in page
    assert "/api/docs" not in page


def test_staff_at_the_operations_admin_get_the_styled_403(staff: User) -> None:
    browser = signed_in(staff)
    with unchanged():
        response = browser.get("/admin/")
    assert response.status_code == 403
    page = response.content.decode()
    assert BRAND in page
    assert STYLESHEET in page
    assert "<h1>You may not open this page</h1>" in page


def test_the_500_page_renders_without_a_request_context() -> None:
    response = server_error(RequestFactory().get("/projects/1/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert BRAND in page
    assert STYLESHEET in page
    assert "<h1>Something went wrong on our side</h1>" in page
    assert "Sign out" not in page


def test_unknown_addresses_under_the_api_still_answer_json() -> None:
    response = Client().get("/api/no-such-endpoint")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_browser_asking_for_favicon_ico_is_sent_to_the_site_icon() -> None:
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/web/favicon.svg"
