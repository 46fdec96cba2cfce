"""Tax on the pages: the settings' Tax tab (rates, price mode, notes, country, deposits),
the customer form's treatment and country, the quote editor's rate per line and its
breakdown, the quote pages, the invoice page and the draft's amount, project financials."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.test import Client

from tests.billing.helpers import draft_for
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tests.web.test_quotes_pages import form_body
from tranche.accounts.business import DEFAULT_REVERSE_CHARGE_NOTE, business_profile, business_row
from tranche.accounts.models import Customer, TaxRate, User
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail
from tranche.notifications.quotes import quote_send
from tranche.projects.models import Project
from tranche.sales.models import Quote, QuoteLine
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def vat() -> TaxRate:
    return TaxRate.objects.create(name="VAT 20 %", percentage=Decimal(20))


@pytest.fixture
def reduced() -> TaxRate:
    return TaxRate.objects.create(name="VAT 5 %", percentage=Decimal(5))


def text(page: bytes) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.decode())).split())


# --- the settings' Tax tab ----------------------------------------------------------------


def test_who_may_open_the_tax_settings(admin: User, staff: User, alice: User) -> None:
    assert signed_in(admin).get("/settings/tax/").status_code == 200
    assert signed_in(staff).get("/settings/tax/").status_code == 403
    assert signed_in(alice).get("/settings/tax/").status_code == 404
    anonymous = Client().get("/settings/tax/")
    assert (anonymous.status_code, anonymous["Location"].startswith("/login/")) == (302, True)


def test_the_tax_tab_shows_the_rates_and_the_default_notes(admin: User, vat: TaxRate) -> None:
    TaxRate.objects.create(name="Old rate", percentage=Decimal(19), is_active=False)
    page = signed_in(admin).get("/settings/tax/").content.decode()
    assert 'value="VAT 20 %"' in page
    assert "Retired" in page
    assert "Offer again" in page
    assert f'placeholder="{html.escape(DEFAULT_REVERSE_CHARGE_NOTE)}"' in page
    assert "Send deposit invoices automatically" in page
    assert '<option value="DE">Germany (DE)</option>' in page


def test_an_admin_saves_the_tax_settings(admin: User) -> None:
    response = signed_in(admin).post(
        "/settings/tax/",
        {
            "price_mode": "inclusive",
            "reverse_charge_note": "",
            "tax_exempt_note": "Exempt: section 12.",
            "country": "FR",
            "send_deposits_automatically": "on",
        },
        follow=True,
    )
    assert "Tax settings saved" in text(response.content)
    profile = business_profile()
    assert (profile.price_mode, profile.country, profile.tax_exempt_note) == (
        "inclusive",
        "FR",
        "Exempt: section 12.",
    )
    assert profile.send_deposits_automatically is True
    assert profile.reverse_charge_note == DEFAULT_REVERSE_CHARGE_NOTE


@pytest.mark.parametrize(
    ("persona", "status"), [("staff", 403), ("alice", 404), ("anonymous", 302)]
)
def test_only_an_admin_changes_tax_settings_or_rates_on_the_pages(
    request: pytest.FixtureRequest, vat: TaxRate, persona: str, status: int
) -> None:
    business_row()
    client = Client() if persona == "anonymous" else signed_in(request.getfixturevalue(persona))
    with unchanged():
        for path, body in (
            ("/settings/tax/", {"price_mode": "inclusive", "country": "DE"}),
            ("/settings/tax/rates", {"name": "GST 10 %", "percentage": "10"}),
            (f"/settings/tax/rates/{vat.pk}", {"name": "VAT", "percentage": "21"}),
            (f"/settings/tax/rates/{vat.pk}/retire", {}),
        ):
            assert client.post(path, body).status_code == status, path


def test_a_wrong_country_is_refused_next_to_its_field_and_nothing_changes(admin: User) -> None:
    business_row()
    client = signed_in(admin)
    with unchanged():
        response = client.post("/settings/tax/", {"price_mode": "exclusive", "country": "XX"})
    assert response.status_code == 422
    assert "&#x27;XX&#x27; is not a country code" in response.content.decode()
    assert 'id="id_country-error"' in response.content.decode()


def test_an_admin_adds_edits_retires_and_offers_again_a_rate(admin: User) -> None:
    client = signed_in(admin)
    added = client.post(
        "/settings/tax/rates", {"name": "VAT 20 %", "percentage": "20"}, follow=True
    )
    assert "Tax rate “VAT 20 %” added" in text(added.content)
    rate = TaxRate.objects.get()
    client.post(f"/settings/tax/rates/{rate.pk}", {"name": "VAT 21 %", "percentage": "21"})
    rate.refresh_from_db()
    assert (rate.name, rate.percentage) == ("VAT 21 %", Decimal(21))
    client.post(f"/settings/tax/rates/{rate.pk}/retire")
    rate.refresh_from_db()
    assert rate.is_active is False
    client.post(f"/settings/tax/rates/{rate.pk}/reactivate")
    rate.refresh_from_db()
    assert rate.is_active is True


def test_a_rate_that_breaks_a_rule_is_shown_with_its_sentence(admin: User, vat: TaxRate) -> None:
    client = signed_in(admin)
    with unchanged():
        taken = client.post("/settings/tax/rates", {"name": "VAT 20 %", "percentage": "20"})
        wrong = client.post("/settings/tax/rates", {"name": "Odd", "percentage": "12.345"})
    assert taken.status_code == 409
    assert "already exists" in text(taken.content)
    assert wrong.status_code == 422
    assert 'id="id_rate_percentage-error"' in wrong.content.decode()
    assert 'value="12.345"' in wrong.content.decode()  # what was typed stays


# --- customers ----------------------------------------------------------------------------


def test_staff_mark_a_customer_reverse_charge_with_a_country(
    staff: User, customer_a: Customer
) -> None:
    client = signed_in(staff)
    page = client.get(f"/customers/{customer_a.pk}/edit/").content.decode()
    assert 'name="tax_treatment" value="reverse_charge"' in page
    response = client.post(
        f"/customers/{customer_a.pk}/edit/",
        {
            "name": customer_a.name,
            "billing_email": customer_a.billing_email,
            "payment_terms_days": "14",
            "country": "DE",
            "tax_treatment": "reverse_charge",
        },
        follow=True,
    )
    customer_a.refresh_from_db()
    assert (customer_a.country, customer_a.tax_treatment) == ("DE", "reverse_charge")
    assert "Reverse charge" in text(response.content)
    with unchanged():
        refused = client.post(
            f"/customers/{customer_a.pk}/edit/",
            {"name": "A", "payment_terms_days": "14", "country": "QQ"},
        )
    assert refused.status_code == 422
    assert 'id="id_country-error"' in refused.content.decode()


# --- the quote editor and the quote pages ------------------------------------------------


def test_the_editor_offers_the_active_rates_and_previews_net_tax_and_gross(
    staff: User, customer_a: Customer, vat: TaxRate, reduced: TaxRate
) -> None:
    TaxRate.objects.create(name="Retired 7 %", percentage=Decimal(7), is_active=False)
    client = signed_in(staff)
    page = client.get("/quotes/new").content.decode()
    assert f'<option value="{vat.pk}">VAT 20 %</option>' in page
    assert "Retired 7 %" not in page
    assert "Prices exclude tax" in page
    body = form_body(
        customer_a, **{"line-1-tax_rate": str(vat.pk), "line-2-tax_rate": str(reduced.pk)}
    )
    with unchanged():
        preview = client.post("/quotes/preview", body)
    words = text(preview.content)
    # 400.01 at 20 % (tax 80.00) and 600.00 at 5 % (tax 30.00).
    assert "VAT 20 % $400.01 $80.00 $480.01" in words
    assert "VAT 5 % $600.00 $30.00 $630.00" in words
    assert "Total $1,000.01 $110.00 $1,110.01" in words
    saved = client.post("/quotes/new", body, follow=True)
    assert saved.status_code == 200
    lines = list(QuoteLine.objects.order_by("position"))
    assert [(line.tax_rate_id, line.tax_name) for line in lines] == [
        (vat.pk, "VAT 20 %"),
        (reduced.pk, "VAT 5 %"),
    ]
    assert "VAT 20 % $400.01 $80.00 $480.01" in text(saved.content)


def test_a_retired_rate_on_a_draft_asks_for_another(
    staff: User, admin: User, customer_a: Customer, vat: TaxRate
) -> None:
    quote = quote_create(
        actor=admin,
        customer_id=customer_a.pk,
        title="Roof",
        currency="USD",
        lines=[LineInput("Tiles", Decimal(1), Decimal(100), vat.pk)],
        schedule=[ScheduleInput("All", True, Decimal(100))],
    )
    vat.is_active = False
    vat.save()
    client = signed_in(staff)
    page = client.get(f"/quotes/{quote.pk}/edit").content.decode()
    assert "VAT 20 % — retired</option>" in page
    body = {
        "customer": str(customer_a.pk),
        "title": "Roof",
        "currency": "USD",
        "line_count": "1",
        "line-1-description": "Tiles",
        "line-1-quantity": "1",
        "line-1-unit_price": "100",
        "line-1-tax_rate": str(vat.pk),
        "item_count": "1",
        "item-1-title": "All",
        "item-1-billable": "on",
        "item-1-percentage": "100",
        "save": "1",
    }
    with unchanged():
        response = client.post(f"/quotes/{quote.pk}/edit", body)
    assert response.status_code == 422
    assert "Line 1: “VAT 20 %” is retired; choose another tax rate." in text(response.content)


def test_the_customer_sees_the_breakdown_on_the_quote_and_in_its_email(
    admin: User, alice: User, customer_a: Customer, vat: TaxRate
) -> None:
    quote = quote_create(
        actor=admin,
        customer_id=customer_a.pk,
        title="Roof",
        currency="USD",
        lines=[LineInput("Tiles", Decimal(2), Decimal("50.25"), vat.pk)],
        schedule=[ScheduleInput("All", True, Decimal(100))],
    )
    quote_send(actor=admin, quote_id=quote.pk)
    words = text(signed_in(alice).get(f"/quotes/{quote.pk}/").content)
    assert "VAT 20 % $100.50 $20.10 $120.60" in words
    assert "Total, before tax $100.50" in words
    staff_words = text(signed_in(admin).get(f"/quotes/{quote.pk}/").content)
    assert "VAT 20 % $100.50 $20.10 $120.60" in staff_words
    email = OutboxEmail.objects.get()
    assert "VAT 20 % on $100.50: $20.10" in email.body_text
    assert "Total, including tax: $120.60" in email.body_text


# --- invoices and the project's financials -----------------------------------------------


def taxed_project(admin: User, customer: Customer, vat: TaxRate, reduced: TaxRate) -> Project:
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Brand book",
        currency="USD",
        lines=[
            LineInput("Design", Decimal(1), Decimal(1000), vat.pk),
            LineInput("Print", Decimal(1), Decimal(500), reduced.pk),
        ],
        schedule=[
            ScheduleInput("Half", True, Decimal(50)),
            ScheduleInput("Rest", True, Decimal(50)),
        ],
    )
    return quote_accept(actor=admin, quote_id=quote.pk)


def test_the_invoice_page_shows_each_rate_and_the_draft_amount_is_the_contract_share(
    admin: User, customer_a: Customer, vat: TaxRate, reduced: TaxRate
) -> None:
    project = taxed_project(admin, customer_a, vat, reduced)
    draft = draft_for(project, 1, admin)
    client = signed_in(admin)
    page = client.get(f"/invoices/{draft.pk}/").content.decode()
    words = text(page.encode())
    assert "VAT 20 % $500.00 $100.00 $600.00" in words
    assert "VAT 5 % $250.00 $12.50 $262.50" in words
    assert "This invoice, including tax $862.50" in words
    assert "Amount billed, before tax" in page
    assert 'name="amount" value="750.00"' in page
    # Saving the draft as it is changes nothing; a new contract share is taxed per rate.
    client.post(
        f"/invoices/{draft.pk}/edit",
        {"amount": "750.00", "description": draft.description, "due_date": ""},
    )
    draft.refresh_from_db()
    assert (draft.contract_amount, draft.amount) == (Decimal(750), Decimal("862.50"))
    client.post(
        f"/invoices/{draft.pk}/edit",
        {"amount": "600.00", "description": draft.description, "due_date": ""},
    )
    draft.refresh_from_db()
    assert (draft.contract_amount, draft.net_amount, draft.tax_amount) == (
        Decimal(600),
        Decimal(600),
        Decimal(90),  # 400 at 20 % and 200 at 5 %
    )


def test_a_reverse_charge_invoice_page_carries_the_note(
    admin: User, alice: User, customer_a: Customer, vat: TaxRate, reduced: TaxRate
) -> None:
    customer_a.tax_treatment = "reverse_charge"
    customer_a.save()
    project = taxed_project(admin, customer_a, vat, reduced)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    words = text(signed_in(alice).get(f"/invoices/{sent.pk}/").content)
    assert "VAT 20 %, charged 0 % $500.00 $0.00 $500.00" in words
    assert DEFAULT_REVERSE_CHARGE_NOTE in words


def test_the_invoice_email_says_how_much_tax_the_total_includes(
    admin: User, customer_a: Customer, vat: TaxRate, reduced: TaxRate
) -> None:
    project = taxed_project(admin, customer_a, vat, reduced)
    invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    email = OutboxEmail.objects.get(kind="invoice_sent")
    assert "Total:      $862.50, including tax $112.50" in email.body_text
    assert "including tax $112.50" in email.body_html


def test_project_financials_show_the_contract_before_tax_per_rate(
    admin: User, customer_a: Customer, vat: TaxRate, reduced: TaxRate
) -> None:
    project = taxed_project(admin, customer_a, vat, reduced)
    draft_for(project, 1, admin)
    words = text(signed_in(admin).get(f"/projects/{project.pk}/financials").content)
    assert "Contract, before tax $1,500.00" in words
    assert "VAT 20 % $1,000.00" in words
    assert "VAT 5 % $500.00" in words
    # The draft bills 750.00 of the contract (862.50 with tax): 750.00 is left to bill.
    assert "Not yet billed $750.00" in words
    assert Quote.objects.get().price_mode == "exclusive"
