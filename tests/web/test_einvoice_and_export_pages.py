"""The e-invoice link on the invoice page (both portals) and the accounting export form on
the financials page (staff): who sees them, what they download, and the refusals."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import facturx
import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.billing.taxed import rate, sent_invoice, set_up_business, taxed_project
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import Customer, User
from tranche.billing.exports import COLUMNS
from tranche.billing.models import Invoice

pytestmark = pytest.mark.django_db

LINK = "Download e-invoice (Factur-X)"


@pytest.fixture
def invoice(admin: User, customer_a: Customer) -> Invoice:
    set_up_business()
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    return sent_invoice(project, admin)


@pytest.mark.parametrize("persona", ["admin", "staff", "alice"])
def test_a_sent_invoices_page_offers_its_e_invoice(
    request: pytest.FixtureRequest, invoice: Invoice, persona: str
) -> None:
    client = signed_in(request.getfixturevalue(persona))
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert f'href="/invoices/{invoice.pk}/factur-x.pdf" download>{LINK}</a>' in page

    response = client.get(f"/invoices/{invoice.pk}/factur-x.pdf")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="{invoice.number}-factur-x.pdf"'
    )
    _name, xml = facturx.get_facturx_xml_from_pdf(io.BytesIO(response.content), check_xsd=True)
    assert invoice.number is not None
    assert invoice.number.encode() in xml


def test_a_draft_offers_none_and_someone_elses_invoice_is_not_found(
    admin: User, bob: User, invoice: Invoice
) -> None:
    draft = draft_for(invoice.project, 2, admin)
    staff_client, bob_client = signed_in(admin), signed_in(bob)

    with unchanged():
        page = staff_client.get(f"/invoices/{draft.pk}/").content.decode()
        drafts_file = staff_client.get(f"/invoices/{draft.pk}/factur-x.pdf")
        bobs = bob_client.get(f"/invoices/{invoice.pk}/factur-x.pdf")

    assert LINK not in page
    assert drafts_file.status_code == 404
    assert bobs.status_code == 404


# --- the accounting export form ------------------------------------------------------------


def test_staff_see_the_export_form_with_last_month_and_customers_do_not(
    staff: User, alice: User
) -> None:
    end = timezone.localdate().replace(day=1) - timedelta(days=1)

    page = signed_in(staff).get("/financials/").content.decode()

    assert 'action="/financials/accounting-export"' in page
    assert f'name="date_from" type="date" required value="{end.replace(day=1).isoformat()}"' in page
    assert f'name="date_to" type="date" required value="{end.isoformat()}"' in page
    assert "accounting-export" not in signed_in(alice).get("/financials/").content.decode()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_form_downloads_the_export(staff: User, invoice: Invoice, fmt: str) -> None:
    today = invoice.issue_date.isoformat()

    response = signed_in(staff).get(
        "/financials/accounting-export", {"date_from": today, "date_to": today, "format": fmt}
    )

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="accounting-{today}-to-{today}.{fmt}"'
    )
    assert response.streaming
    content = response.getvalue().decode()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(content)))
        assert list(rows[0]) == COLUMNS
    else:
        rows = json.loads(content)["rows"]
    assert [(r["number"], r["gross"]) for r in rows] == [(invoice.number, "360.00")]


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("date_from=2026-11-30&date_to=2026-11-01&format=csv", "ends before it starts"),
        ("date_from=2026-11-01&format=csv", "needs a “from” and a “to” date"),
        ("date_from=2026-11-01&date_to=2026-11-30&format=xlsx", "CSV or JSON"),
    ],
)
def test_a_form_that_cannot_be_read_goes_back_with_a_sentence(
    staff: User, query: str, sentence: str
) -> None:
    client = signed_in(staff)

    with unchanged():
        response = client.get(f"/financials/accounting-export?{query}")

    assert response.status_code == 302
    assert response["Location"] == "/financials/"
    assert sentence in " ".join(str(m) for m in get_messages(response.wsgi_request))


def test_customers_get_no_export(alice: User, invoice: Invoice) -> None:
    client = signed_in(alice)
    today = invoice.issue_date.isoformat()

    with unchanged():
        response = client.get(
            "/financials/accounting-export",
            {"date_from": today, "date_to": today, "format": "csv"},
        )

    assert response.status_code == 404
