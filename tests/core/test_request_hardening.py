"""Rules every URL obeys: NUL bytes are refused with a 4xx, every answer under /api/ is
JSON `{"detail", "code"}` whoever produced it, a Content-Security-Policy is on every page
(Stripe only on the pay page), and signed-in pages and the API are never cached."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import Api, unchanged
from tranche.accounts import selectors as account_selectors
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

NUL_REFUSED = {"detail": "The request contains a NUL character.", "code": "nul_character"}


@pytest.fixture
def sent(project_a: Project, admin: User) -> Invoice:
    return invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)


def signed_in(user: User) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


# --- 10. NUL bytes ------------------------------------------------------------------------


def test_anonymous_pay_link_with_a_nul_byte_is_a_plain_400(sent: Invoice) -> None:
    with unchanged():
        response = Client().get(f"/pay/{sent.pay_token}%00")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_anonymous_sandbox_payment_with_a_nul_in_the_card_number_is_refused(
    sent: Invoice,
) -> None:
    with unchanged():
        response = Client().post(f"/pay/{sent.pay_token}", {"card_number": "4242\x00"})
    assert response.status_code == 400


def test_anonymous_token_request_with_a_nul_in_the_email_is_refused_in_json(staff: User) -> None:
    with unchanged():
        response = Api(None).post(
            "/api/auth/token", {"email": "staff@tranche.example\x00", "password": PASSWORD}
        )
    assert response.status == 400
    assert response.body == NUL_REFUSED


def test_anonymous_sign_in_form_with_a_nul_in_the_email_is_a_plain_400(staff: User) -> None:
    with unchanged():
        response = Client().post("/login/", {"username": "staff\x00@x.example", "password": "x"})
    assert response.status_code == 400


def test_a_nul_in_the_user_agent_of_a_failed_login_is_refused(staff: User) -> None:
    # django-axes would store the agent of the failed attempt.
    with unchanged():
        response = Client().post(
            "/login/",
            {"username": staff.email, "password": "guess"},
            headers={"User-Agent": "curl\x00"},
        )
    assert response.status_code == 400


def test_admin_creating_a_customer_with_a_nul_in_its_name_is_refused(
    as_: Any, customer_a: Customer
) -> None:
    admin = as_("admin")
    with unchanged():
        response = admin.post("/api/customers", {"name": "Init\x00ech"})
    assert response.status == 400
    assert response.body == NUL_REFUSED


def test_staff_query_string_with_a_nul_is_refused(as_: Any) -> None:
    staff = as_("staff")
    with unchanged():
        response = staff.get("/api/projects?limit=5%00")
    assert response.status == 400
    assert response.body == NUL_REFUSED


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(as_: Any) -> None:
    response = as_("admin").post("/api/customers", raw='{"name": "Dir C:\\\\u0000"}')

    assert response.status == 201
    assert response.body["name"] == "Dir C:\\u0000"


# --- 17. JSON for every error under /api/ ---------------------------------------------------


def test_admin_sending_a_body_over_the_upload_limit_gets_json_413(as_: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    admin = as_("admin")
    with unchanged():
        response = admin.post("/api/customers", {"name": "x" * 2000})
    assert response.status == 413
    assert response.body == {
        "detail": "The request body is too large.",
        "code": "request_too_large",
    }


def test_admin_posting_a_page_form_over_the_limit_gets_a_413_page_and_nothing_changes(
    admin: User, settings: Any
) -> None:
    """Outside the API too: the form was not read because of its size, which a 400 ("bad
    request") would not tell the person who sent it."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    browser = signed_in(admin)
    with unchanged():
        response = browser.post("/settings/", {"name": "x" * 2000})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "What you sent is too large" in page
    assert "Nothing was changed." in page


def test_a_host_the_site_does_not_serve_gets_json_400() -> None:
    response = Client().get("/api/health", headers={"Host": "evil.example"})

    assert response.status_code == 400
    assert response.json() == {"detail": "This host name is not served here.", "code": "bad_host"}


def test_an_unexpected_failure_under_the_api_is_json_500(
    staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("the database went away mid-request")

    monkeypatch.setattr(account_selectors, "customer_list", broken)
    browser = Client(raise_request_exception=False)
    browser.force_login(staff)

    response = browser.get("/api/customers")

    assert response.status_code == 500
    assert response.json() == {
        "detail": "Something went wrong on our side.",
        "code": "server_error",
    }


def test_a_csrf_failure_under_the_api_is_json_403() -> None:
    with unchanged():
        response = Client(enforce_csrf_checks=True).post("/api/no-such-endpoint", {"a": "b"})
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


def test_a_method_the_endpoint_does_not_have_is_json_405() -> None:
    response = Client().put("/api/health")

    assert response.status_code == 405
    assert response.json() == {
        "detail": "This method is not allowed here.",
        "code": "method_not_allowed",
    }
    assert "GET" in response["Allow"]


def test_outside_the_api_errors_stay_html_pages() -> None:
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- 15. Content-Security-Policy and caching ------------------------------------------------


def directives(response: Any) -> dict[str, set[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = set(sources)
    return parsed


def inline_code(html: str) -> list[str]:
    """Inline scripts, <style> blocks and style attributes: what a strict CSP blocks.
    JSON data blocks (`json_script`) are not run, so they are allowed."""
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    found = [
        body for attrs, body in scripts if "src=" not in attrs and "application/json" not in attrs
    ]
    found += re.findall(r"<style\b[^>]*>", html) + re.findall(r"\sstyle=\"[^\"]*\"", html)
    return found


def test_the_sign_in_page_allows_scripts_and_styles_from_the_site_only() -> None:
    response = Client().get("/login/")

    csp = directives(response)
    assert csp["default-src"] == {"'self'"}
    assert csp["script-src"] == {"'self'"}
    assert csp["style-src"] == {"'self'"}
    assert csp["frame-ancestors"] == {"'none'"}
    assert "stripe" not in response["Content-Security-Policy"]


def test_signed_in_pages_are_not_stored_by_any_cache(alice: User, project_a: Project) -> None:
    browser = signed_in(alice)
    for url in ("/", f"/projects/{project_a.pk}/", "/api/projects"):
        response = browser.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
        assert directives(response)["script-src"] == {"'self'"}, url


def test_api_answers_are_not_stored_by_any_cache(as_: Any) -> None:
    response = as_("staff").client.get("/api/health")

    assert "no-store" in response["Cache-Control"]


def test_the_stripe_pay_page_may_load_stripe_and_has_no_inline_script(
    project_a: Project, admin: User, fake_stripe: FakeStripe, settings: Any
) -> None:
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_tranche"
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)

    response = Client().get(f"/pay/{invoice.pay_token}")

    assert response.status_code == 200
    csp = directives(response)
    assert csp["script-src"] == {"'self'", "https://js.stripe.com", "https://*.js.stripe.com"}
    assert "https://hooks.stripe.com" in csp["frame-src"]
    assert "https://api.stripe.com" in csp["connect-src"]
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert inline_code(page) == []
    assert 'src="/static/billing/pay.js"' in page


@pytest.mark.parametrize("page", ["/login/", "/", "/financials/"])
def test_site_pages_carry_no_inline_script_or_style(admin: User, page: str) -> None:
    response = signed_in(admin).get(page, follow=True)

    assert response.status_code == 200
    assert inline_code(response.content.decode()) == []


def test_a_form_encoded_post_to_the_webhook_is_refused_without_a_server_error() -> None:
    # The NUL check reads the form; the webhook still needs the raw body for its signature.
    with unchanged():
        response = Client(raise_request_exception=False).post(
            "/api/webhooks/stripe", {"id": "evt_1"}, headers={"Stripe-Signature": "t=1,v1=x"}
        )
    assert response.status_code == 400
    assert response.json()["code"]


def test_the_api_documentation_stays_a_page_and_runs_no_inline_script() -> None:
    response = Client().get("/api/docs")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert directives(response)["script-src"] == {"'self'"}
    assert inline_code(response.content.decode()) == []
