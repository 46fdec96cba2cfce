"""The invoice as a PDF: what it says, and who may have it."""

from __future__ import annotations

import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from PIL import Image
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.helpers import Api, unchanged
from tranche.accounts.business import business_row
from tranche.accounts.models import User
from tranche.billing.models import Invoice
from tranche.billing.pdf import invoice_html, invoice_pdf
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def pdf_path(invoice: Invoice) -> str:
    return f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}/pdf"


def text_of(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_a_sent_invoice_reads_as_the_customer_will_see_it(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    first = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    second = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=second.pk,
        amount=Decimal("100.00"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )

    response = as_("admin").client.get(pdf_path(second), headers=as_("admin").headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="{second.number}.pdf"'
    text = text_of(response.content)
    assert f"Invoice {second.number}" in text
    assert "Harbour Build Co" in text  # the business
    assert "Acme Builders" in text
    assert "accounts@acme.example" in text
    assert "Milestone 2 of 3 — " in text
    assert "% of the contract" in text
    for line in (
        "Contract total $1,000.00",
        f"Invoiced to date, this invoice included ${first.amount + second.amount:,.2f}",
        "Paid $100.00",
        f"Amount due ${second.amount - 100:,.2f}",
    ):
        assert line in text
    assert second.payment_link in text.replace("\n", "")
    assert "DRAFT" not in text


def test_a_draft_is_marked_draft_and_has_no_number(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_("staff")
    response = api.client.get(pdf_path(draft), headers=api.headers)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'inline; filename="draft-invoice-{draft.pk}.pdf"'
    text = text_of(response.content)
    assert "DRAFT" in text
    assert "Draft invoice" in text
    assert "INV-" not in text


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [
        ("alice", 404, "invoice_not_found"),  # a customer is never given a draft
        ("bob", 404, "project_not_found"),
        ("anonymous", 401, "not_authenticated"),
    ],
)
def test_who_may_not_have_a_drafts_document(
    as_: Callable[[str], Api], project_a: Project, admin: User, persona: str, status: int, code: str
) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_(persona)
    with unchanged():
        response = api.get(pdf_path(draft))
    assert (response.status, response.body["code"]) == (status, code)


def test_the_customer_downloads_her_sent_invoice_and_so_does_whoever_holds_its_link(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    alice = as_("alice")

    from_portal = alice.client.get(pdf_path(sent), headers=alice.headers)
    from_link = Client().get(f"/pay/{sent.pay_token}/invoice.pdf")

    assert (from_portal.status_code, from_link.status_code) == (200, 200)
    assert f"Invoice {sent.number}" in text_of(from_portal.content)
    assert f"Invoice {sent.number}" in text_of(from_link.content)
    assert Client().get("/pay/not-a-token/invoice.pdf").status_code == 404
    assert "invoice.pdf" in Client().get(f"/pay/{sent.pay_token}").content.decode()


def test_the_document_wears_the_business_settings_and_the_customers_details(
    as_: Callable[[str], Api], project_a: Project, admin: User, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    row = business_row()
    row.name = "Harbour & Sons Ltd"
    row.address = "1 Quay Street\nPortsmouth PO1 2AB"
    row.tax_id = "GB123456789"
    row.bank_details = "Harbour & Sons Ltd\nIBAN GB33BUKB20201555555555"
    logo = io.BytesIO()
    Image.new("RGB", (90, 30), (41, 82, 204)).save(logo, "PNG")
    row.logo.save("logo-test.png", ContentFile(logo.getvalue()), save=False)
    row.save()
    customer = project_a.customer
    customer.contact_name = "Ada Byron"
    customer.address = "7 Mill Lane\nLeeds LS1 4AP"
    customer.tax_id = "GB987654321"
    customer.save()
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)

    html = invoice_html(sent)
    assert 'class="logo" src="data:image/png;base64,' in html
    response = as_("admin").client.get(pdf_path(sent), headers=as_("admin").headers)
    text = text_of(response.content)
    for expected in (
        "Harbour & Sons Ltd",
        "1 Quay Street",
        "Portsmouth PO1 2AB",
        "Tax id: GB123456789",
        "Acme Builders",
        "Attn. Ada Byron",
        "7 Mill Lane",
        "accounts@acme.example",
        "Tax id: GB987654321",
        "Bank transfer",
        "IBAN GB33BUKB20201555555555",
        f"Reference: {sent.number}",
        "Pay online",
    ):
        assert expected in text, expected
    assert "Harbour Build Co" not in text  # the environment's name is only the default
    reader = PdfReader(io.BytesIO(response.content))
    assert any(page.images for page in reader.pages)  # the logo


def test_without_settings_the_document_uses_the_environment_defaults(
    as_: Callable[[str], Api], project_a: Project, admin: User, settings: Any
) -> None:
    settings.BANK_DETAILS = "Pay to account 12-34-56 / 87654321"
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    text = text_of(as_("admin").client.get(pdf_path(sent), headers=as_("admin").headers).content)
    assert "Harbour Build Co" in text
    assert "Pay to account 12-34-56 / 87654321" in text
    assert "Tax id" not in text


def test_a_draft_cancelled_before_it_was_sent_reads_as_such_and_asks_for_nothing(
    admin: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    invoice_cancel(actor=admin, invoice_id=draft.pk, reason="Scope changed")
    draft.refresh_from_db()

    text = text_of(invoice_pdf(draft))

    assert "Invoice None" not in text
    assert "Draft invoice" in text
    assert "Cancelled before it was sent: nothing is to be paid." in text
    assert "this invoice included" not in text
    assert draft.amount_due == 0


def test_a_document_opened_again_is_not_rendered_again_until_what_it_says_changes(
    as_: Callable[[str], Api], project_a: Project, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer opens her invoice twice: WeasyPrint lays it out once. A payment changes
    what the document says, so the next download is laid out anew and says so."""
    import weasyprint  # type: ignore[import-untyped]

    renders: list[str] = []
    write_pdf = weasyprint.HTML.write_pdf

    def counted(self: Any, *args: Any, **kwargs: Any) -> bytes:
        renders.append("pdf")
        return write_pdf(self, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(weasyprint.HTML, "write_pdf", counted)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    alice = as_("alice")

    first = alice.client.get(pdf_path(sent), headers=alice.headers)
    again = alice.client.get(pdf_path(sent), headers=alice.headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert len(renders) == 1
    assert "Paid $0.00" in text_of(first.content)

    payment_record_manual(
        actor=admin,
        invoice_id=sent.pk,
        amount=Decimal("50.00"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    after = alice.client.get(pdf_path(sent), headers=alice.headers)

    assert len(renders) == 2
    assert "Paid $50.00" in text_of(after.content)
