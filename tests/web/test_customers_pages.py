"""The customers pages (staff and admins): the list with balances, creating and editing
with errors by the field, a customer's page, and inviting and deactivating their users."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, CustomerFactory, UserFactory, make_project, make_quote
from tests.helpers import Api, unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import Business, Customer, Role, User
from tranche.accounts.services import token_create
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail

pytestmark = pytest.mark.django_db

NEW = {
    "name": "Initech",
    "billing_email": "AP@Initech.example",
    "contact_name": "Bill Lumbergh",
    "address": "4120 Freidrich Lane\nAustin TX",
    "tax_id": "US-12-3456789",
    "payment_terms_days": "30",
}


def names_on(page: str) -> list[str]:
    return re.findall(r'data-label="Customer"><a href="/customers/\d+/">([^<]+)</a>', page)


def link_in(email: OutboxEmail) -> str:
    found = re.search(r"https?://[^/\s]+(/account/set-password/[^/\s]+/[^/\s]+/)", email.body_text)
    assert found, email.body_text
    return found.group(1)


# --- the list ---------------------------------------------------------------------------


def test_staff_see_each_customer_with_what_they_owe_per_currency(
    staff: User, admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    usd = make_project(actor=admin, customer=customer_a, title="Kitchen", total="1000.00")
    eur = make_project(actor=admin, customer=customer_a, title="Attic", total="500", currency="EUR")
    invoice_send(actor=admin, invoice_id=draft_for(usd, 1, admin).pk)
    invoice_send(actor=admin, invoice_id=draft_for(eur, 1, admin).pk)
    draft_for(usd, 2, admin)  # a draft is not owed yet

    page = signed_in(staff).get("/customers/").content.decode()

    assert names_on(page) == ["Acme Builders", "Globex Studio"]
    acme = page[page.index("Acme Builders") : page.index("Globex Studio")]
    assert "$300.00" in acme
    assert "€150.00" in acme
    assert "$600.00" not in acme
    globex = page[page.index("Globex Studio") :]
    assert "Nothing due" in globex


def test_staff_search_customers_by_name_billing_email_or_contact(
    staff: User, customer_a: Customer, customer_b: Customer
) -> None:
    CustomerFactory.create(name="Umbrella", billing_email="x@umbrella.example", contact_name="Ada")
    browser = signed_in(staff)
    assert names_on(browser.get("/customers/?q=acme").content.decode()) == ["Acme Builders"]
    assert names_on(browser.get("/customers/?q=ap@globex").content.decode()) == ["Globex Studio"]
    assert names_on(browser.get("/customers/?q=ada").content.decode()) == ["Umbrella"]
    nothing = browser.get("/customers/?q=Nowhere").content.decode()
    assert names_on(nothing) == []
    assert "No customer matches “Nowhere”." in nothing


def test_the_list_pages_by_25(staff: User) -> None:
    for n in range(30):
        CustomerFactory.create(name=f"Client {n:02d}")
    browser = signed_in(staff)
    first = browser.get("/customers/").content.decode()
    assert names_on(first) == [f"Client {n:02d}" for n in range(25)]
    assert "Page 1 of 2 · 30 customers" in first
    assert names_on(browser.get("/customers/?page=2").content.decode()) == [
        f"Client {n:02d}" for n in range(25, 30)
    ]


def _queries_for_list(browser: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = browser.get("/customers/")
    assert response.status_code == 200
    return len(queries)


def test_a_page_of_customers_costs_the_same_queries_for_1_or_50_rows(
    staff: User, admin: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a)
    invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    browser = signed_in(staff)
    one = _queries_for_list(browser)
    for _ in range(49):
        customer = CustomerFactory.create()
        project = make_project(actor=admin, customer=customer)
        invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    assert _queries_for_list(browser) == one


@pytest.mark.parametrize(
    "path", ["/customers/", "/customers/new/", "/customers/{a}/", "/customers/{a}/edit/"]
)
def test_a_customer_user_may_not_open_the_customer_pages(
    alice: User, customer_a: Customer, path: str
) -> None:
    browser = signed_in(alice)
    with unchanged():
        response = browser.get(path.format(a=customer_a.pk))
    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in() -> None:
    response = Client().get("/customers/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# --- create and edit --------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_and_admins_create_a_customer(request: Any, persona: str) -> None:
    browser = signed_in(request.getfixturevalue(persona))
    response = browser.post("/customers/new/", NEW)
    created = Customer.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/customers/{created.pk}/"
    assert (created.name, created.billing_email, created.tax_id, created.payment_terms_days) == (
        "Initech",
        "ap@initech.example",
        "US-12-3456789",
        30,
    )
    page = browser.get(response["Location"]).content.decode()
    assert "Customer Initech created." in page
    assert "US-12-3456789" in page
    assert "4120 Freidrich Lane<br>Austin TX" in page


def test_the_new_customer_form_proposes_the_business_default_terms(staff: User) -> None:
    Business.objects.create(pk=1, payment_terms_days=45)
    page = signed_in(staff).get("/customers/new/").content.decode()
    assert re.search(r'name="payment_terms_days"[^>]*value="45"', page)


def test_the_service_defaults_to_the_business_terms(staff: User) -> None:
    from tranche.accounts.services import customer_create

    Business.objects.create(pk=1, payment_terms_days=21)
    assert customer_create(actor=staff, name="Walk-in").payment_terms_days == 21


@pytest.mark.parametrize(
    ("change", "field", "sentence"),
    [
        ({"name": "  "}, "name", "A customer needs a name."),
        ({"billing_email": "not-an-email"}, "billing_email", "'not-an-email' is not an email"),
        ({"payment_terms_days": "400"}, "payment_terms_days", "between 0 and 365 days"),
        ({"payment_terms_days": "ten"}, "payment_terms_days", "must be a whole number of days"),
    ],
)
def test_a_wrong_value_is_refused_next_to_its_field_and_nothing_is_created(
    staff: User, change: dict[str, str], field: str, sentence: str
) -> None:
    browser = signed_in(staff)
    with unchanged():
        response = browser.post("/customers/new/", {**NEW, **change})
    assert response.status_code == 422
    page = response.content.decode()
    error = re.search(rf'<ul class="errorlist" id="id_{field}-error"><li>([^<]*)</li>', page)
    assert error, page
    assert sentence in error.group(1).replace("&#x27;", "'")
    assert f'aria-describedby="id_{field}-help id_{field}-error"' in page or (
        f'aria-describedby=" id_{field}-error"' in page
    )
    messages = page[page.index('id="messages"') : page.index("</div>", page.index('id="messages"'))]
    assert sentence in messages.replace("&#x27;", "'")


def test_staff_edit_a_customer(staff: User, customer_a: Customer) -> None:
    browser = signed_in(staff)
    form = browser.get(f"/customers/{customer_a.pk}/edit/").content.decode()
    assert 'value="Acme Builders"' in form
    response = browser.post(f"/customers/{customer_a.pk}/edit/", {**NEW, "name": "Acme Ltd"})
    assert response.status_code == 302
    customer_a.refresh_from_db()
    assert (customer_a.name, customer_a.tax_id, customer_a.payment_terms_days) == (
        "Acme Ltd",
        "US-12-3456789",
        30,
    )
    assert "Customer Acme Ltd saved." in browser.get(response["Location"]).content.decode()


def test_an_edit_with_a_wrong_value_changes_nothing(staff: User, customer_a: Customer) -> None:
    browser = signed_in(staff)
    with unchanged():
        response = browser.post(
            f"/customers/{customer_a.pk}/edit/", {**NEW, "payment_terms_days": "-1"}
        )
    assert response.status_code == 422


def test_a_customer_user_may_not_create_or_edit(alice: User, customer_a: Customer) -> None:
    browser = signed_in(alice)
    with unchanged():
        assert browser.post("/customers/new/", NEW).status_code == 403
        assert browser.post(f"/customers/{customer_a.pk}/edit/", NEW).status_code == 403


def test_an_unknown_customer_is_404(staff: User) -> None:
    browser = signed_in(staff)
    with unchanged():
        assert browser.get("/customers/999999/").status_code == 404
        assert browser.post("/customers/999999/edit/", NEW).status_code == 404
        assert browser.get("/customers/99999999999999999999/").status_code == 404


# --- a customer's page ------------------------------------------------------------------


def test_a_customers_page_shows_their_details_projects_quotes_and_users(
    staff: User, admin: User, alice: User, customer_a: Customer, customer_b: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a, title="Kitchen")
    quote = make_quote(actor=admin, customer=customer_a, title="Bathroom")
    make_project(actor=admin, customer=customer_b, title="Studio")
    page = signed_in(staff).get(f"/customers/{customer_a.pk}/").content.decode()
    assert "<h1>Acme Builders</h1>" in page
    assert "accounts@acme.example" in page
    assert f'href="/projects/{project.pk}/">Kitchen</a>' in page
    assert f'href="/quotes/{quote.pk}/">Bathroom</a>' in page
    assert "Studio" not in page
    assert "alice@acme.example" in page
    assert 'aria-label="Deactivate alice@acme.example"' in page


# --- inviting portal users --------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_invite_a_portal_user_who_sets_a_password_and_is_signed_in(
    request: Any, persona: str, customer_a: Customer, after_commit: Any
) -> None:
    browser = signed_in(request.getfixturevalue(persona))
    with after_commit(execute=True):
        response = browser.post(
            f"/customers/{customer_a.pk}/users/invite",
            {"email": "Carol@Acme.example", "full_name": "Carol Client"},
        )
    assert response.status_code == 302
    carol = User.objects.get(email="carol@acme.example")
    assert (carol.role, carol.customer_id, carol.full_name) == (
        Role.CUSTOMER,
        customer_a.pk,
        "Carol Client",
    )
    assert not carol.has_usable_password()
    page = browser.get(f"/customers/{customer_a.pk}/").content.decode()
    assert "Invitation sent to carol@acme.example." in page
    assert "Invited" in page

    email = OutboxEmail.objects.get(kind="invitation")
    assert email.to == "carol@acme.example"
    assert "Acme Builders" in email.body_text
    assert "expires in 7 days" in email.body_text
    link = link_in(email)
    assert link in email.body_html

    guest = Client()
    form = guest.get(link)
    assert form.status_code == 200
    assert "carol@acme.example" in form.content.decode()
    assert form["Referrer-Policy"] == "same-origin"
    done = guest.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302
    assert done["Location"] == "/"
    home = guest.get("/")
    assert home.status_code == 200
    assert "carol@acme.example" in home.content.decode()
    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)

    # Once used, the link is dead.
    with unchanged():
        assert Client().get(link).status_code == 410
        assert (
            Client().post(link, {"password1": "another pass 123", "password2": "x"}).status_code
            == 410
        )


def test_an_invitation_refused_says_why_next_to_the_email(
    staff: User, alice: User, customer_a: Customer
) -> None:
    browser = signed_in(staff)
    with unchanged():
        bad = browser.post(f"/customers/{customer_a.pk}/users/invite", {"email": "nope"})
        taken = browser.post(
            f"/customers/{customer_a.pk}/users/invite", {"email": "staff@tranche.example"}
        )
        joined = browser.post(
            f"/customers/{customer_a.pk}/users/invite", {"email": "alice@acme.example"}
        )
    assert bad.status_code == taken.status_code == joined.status_code == 422
    assert "is not an email address." in bad.content.decode()
    assert "staff@tranche.example is already a staff user." in taken.content.decode()
    assert "has already set a password and can sign in" in joined.content.decode()
    assert 'id="id_email-error"' in joined.content.decode()


def test_inviting_again_sends_a_fresh_link_and_the_old_one_stops_working(
    staff: User, customer_a: Customer, after_commit: Any
) -> None:
    browser = signed_in(staff)
    browser.post(f"/customers/{customer_a.pk}/users/invite", {"email": "dan@acme.example"})
    dan = User.objects.get(email="dan@acme.example")
    first = link_in(OutboxEmail.objects.get())
    response = browser.post(f"/customers/{customer_a.pk}/users/{dan.pk}/reinvite")
    assert response.status_code == 302
    assert (
        "A new invitation is on its way to dan@acme.example"
        in browser.get(response["Location"]).content.decode()
    )
    second = link_in(OutboxEmail.objects.order_by("-pk").first())  # type: ignore[arg-type]
    assert second != first
    assert Client().get(first).status_code == 410
    assert Client().get(second).status_code == 200


def test_a_customer_user_may_not_invite(alice: User, customer_a: Customer) -> None:
    browser = signed_in(alice)
    with unchanged():
        response = browser.post(
            f"/customers/{customer_a.pk}/users/invite", {"email": "eve@acme.example"}
        )
    assert response.status_code == 403


# --- deactivating -----------------------------------------------------------------------


def test_staff_deactivate_a_portal_user_who_then_cannot_sign_in_or_use_a_token(
    staff: User, alice: User, customer_a: Customer, admin: User
) -> None:
    project = make_project(actor=admin, customer=customer_a)
    token = token_create(user=alice)
    alice_browser = signed_in(alice)
    browser = signed_in(staff)

    response = browser.post(f"/customers/{customer_a.pk}/users/{alice.pk}/deactivate")

    assert response.status_code == 302
    page = browser.get(f"/customers/{customer_a.pk}/").content.decode()
    assert "alice@acme.example is deactivated: they can no longer sign in." in page
    assert 'aria-label="Reactivate alice@acme.example"' in page
    alice.refresh_from_db()
    assert not alice.is_active
    assert Api(token).get(f"/api/projects/{project.pk}").status == 401
    assert alice_browser.get("/projects/").status_code == 302  # her session is gone
    refused = Client().post("/login/", {"username": alice.email, "password": PASSWORD})
    assert refused.status_code == 200
    assert User.objects.filter(pk=alice.pk).exists()  # her history stays

    browser.post(f"/customers/{customer_a.pk}/users/{alice.pk}/reactivate")
    alice.refresh_from_db()
    assert alice.is_active
    assert Api(token).get(f"/api/projects/{project.pk}").status == 401  # tokens stay revoked
    signed_in(alice)


def test_deactivating_twice_says_so_and_changes_nothing(
    staff: User, alice: User, customer_a: Customer
) -> None:
    browser = signed_in(staff)
    browser.post(f"/customers/{customer_a.pk}/users/{alice.pk}/deactivate")
    with unchanged():
        again = browser.post(f"/customers/{customer_a.pk}/users/{alice.pk}/deactivate")
    assert (
        "alice@acme.example is already deactivated."
        in browser.get(again["Location"]).content.decode()
    )


def test_a_user_of_another_customer_is_404_on_this_customers_page(
    staff: User, bob: User, customer_a: Customer
) -> None:
    browser = signed_in(staff)
    with unchanged():
        for action in ("deactivate", "reactivate", "reinvite"):
            response = browser.post(f"/customers/{customer_a.pk}/users/{bob.pk}/{action}")
            assert response.status_code == 404
        # Nor may staff reach a staff account through a customer's page.
        assert (
            browser.post(f"/customers/{customer_a.pk}/users/{staff.pk}/deactivate").status_code
            == 404
        )


def test_a_customer_user_may_not_deactivate_anyone(alice: User, customer_a: Customer) -> None:
    other = UserFactory.create(email="o@acme.example", role=Role.CUSTOMER, customer=customer_a)
    browser = signed_in(alice)
    with unchanged():
        response = browser.post(f"/customers/{customer_a.pk}/users/{other.pk}/deactivate")
    assert response.status_code == 403
