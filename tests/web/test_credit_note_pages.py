"""Credit notes in the portal: the admin's dialog on the invoice page, the list and the
PDF for staff and for the customer the credit note is for."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.helpers import unchanged
from tests.web.test_invoice_pages import messages_of, page_of, text_of
from tests.web.test_pages import signed_in
from tranche.accounts.models import User
from tranche.billing.models import CreditNote, EventKind, Invoice, InvoiceStatus, Payment
from tranche.billing.services.crediting import credit_note_issue
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def sent(project: Project, admin: User, position: int = 1) -> Invoice:
    return invoice_send(actor=admin, invoice_id=draft_for(project, position, admin).pk)


def test_an_admin_issues_a_partial_credit_note_from_the_invoice_page(
    admin: User, project_a: Project
) -> None:
    invoice = sent(project_a, admin)
    client = signed_in(admin)
    html = page_of(client, invoice)
    assert '<dialog id="credit"' in html
    assert "Issue credit note…" in html
    assert "a credit note for the $300.00 still on it is issued" in html  # the cancel dialog

    response = client.post(
        f"/invoices/{invoice.pk}/credit-notes",
        {"credit-amount": "75.00", "credit-reason": "Goodwill"},
    )
    assert response.status_code == 302
    note = CreditNote.objects.get()
    html = page_of(client, invoice)
    assert (
        f"Credit note {note.number} for $75.00 issued on {invoice.number} and emailed to "
        "accounts@acme.example." in messages_of(html)
    )
    assert f"Credit note {note.number} issued for $75.00. Reason: Goodwill" in html
    assert f"/credit-notes/{note.pk}/credit-note.pdf" in html
    invoice.refresh_from_db()
    assert invoice.amount_due == Decimal(225)


def test_a_refused_credit_comes_back_in_its_dialog_beside_the_field(
    admin: User, project_a: Project
) -> None:
    invoice = sent(project_a, admin)
    client = signed_in(admin)
    with unchanged():
        refused = client.post(
            f"/invoices/{invoice.pk}/credit-notes",
            {"credit-amount": "300.01", "credit-reason": "Too much"},
        )
    assert refused.status_code == 422
    html = refused.content.decode()
    assert 'data-open-dialog="credit"' in html
    assert "is more than can still be credited" in html
    with unchanged():
        empty = client.post(
            f"/invoices/{invoice.pk}/credit-notes", {"credit-amount": "", "credit-reason": ""}
        )
    assert empty.status_code == 422


def test_only_admins_issue_credit_notes_and_drafts_offer_none(
    admin: User, staff: User, alice: User, bob: User, project_a: Project
) -> None:
    invoice = sent(project_a, admin)
    for user in (staff, alice, bob):
        client = signed_in(user)
        with unchanged():
            response = client.post(
                f"/invoices/{invoice.pk}/credit-notes",
                {"credit-amount": "1.00", "credit-reason": "x"},
            )
        assert response.status_code == 404
    draft = draft_for(project_a, 2, admin)
    assert '<dialog id="credit"' not in page_of(signed_in(admin), draft)
    assert '<dialog id="credit"' not in page_of(signed_in(staff), invoice)


def test_a_fully_credited_invoice_reads_credited_to_the_customer_with_its_pdf(
    admin: User, alice: User, bob: User, project_a: Project
) -> None:
    invoice = sent(project_a, admin)
    note = credit_note_issue(
        actor=admin, invoice_id=invoice.pk, amount=Decimal(300), reason="Job called off"
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CREDITED
    customer = signed_in(alice)
    html = page_of(customer, invoice)
    assert '<span class="badge inv-credited">Credited</span>' in html
    assert "This invoice was credited in full: you do not need to pay it." in html
    assert "Pay $" not in html
    assert "Issue credit note" not in html

    listed = customer.get("/credit-notes/").content.decode()
    assert note.number in listed
    assert "Job called off" in listed
    assert note.number not in signed_in(bob).get("/credit-notes/").content.decode()

    pdf = customer.get(f"/credit-notes/{note.pk}/credit-note.pdf")
    assert pdf.status_code == 200
    text = text_of(pdf.content)
    assert f"Credit note {note.number}" in text
    assert f"For invoice {invoice.number}" in text
    assert "Job called off" in text
    assert signed_in(bob).get(f"/credit-notes/{note.pk}/credit-note.pdf").status_code == 404
    invoice_pdf = text_of(customer.get(f"/invoices/{invoice.pk}/invoice.pdf").content)
    assert "Credited (credit notes)" in invoice_pdf


def test_staff_see_every_credit_note_in_the_list(
    admin: User, staff: User, project_a: Project
) -> None:
    first, second = sent(project_a, admin, 1), sent(project_a, admin, 2)
    for invoice in (first, second):
        credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal(5), reason="r")
    html = signed_in(staff).get("/credit-notes/").content.decode()
    assert html.count("credit-note.pdf") == 2
    assert "Acme Builders" in html


def test_an_admin_sets_the_credit_note_number_format_and_a_bad_one_is_refused(
    admin: User,
) -> None:
    from tranche.accounts.business import business_profile

    client = signed_in(admin)
    page = client.get("/settings/").content.decode()
    assert 'name="credit_note_number_format"' in page
    refused = client.post(
        "/settings/", {"name": "Harbour", "credit_note_number_format": "CN-{seq}"}
    )
    assert "The credit note number format must contain {year}" in refused.content.decode()
    assert business_profile().credit_note_number_format == "CN-{year}-{seq:05d}"
    client.post("/settings/", {"name": "Harbour", "credit_note_number_format": "AV-{year}-{seq}"})
    assert business_profile().credit_note_number_format == "AV-{year}-{seq}"


def paid(project: Project, admin: User) -> Invoice:
    invoice = sent(project, admin)
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=invoice.amount_due,
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    invoice.refresh_from_db()
    return invoice


def test_an_admin_records_a_refund_that_credits_the_invoice_from_its_page(
    admin: User, alice: User, project_a: Project
) -> None:
    invoice = paid(project_a, admin)
    client = signed_in(admin)
    html = page_of(client, invoice)
    assert '<dialog id="refund"' in html
    assert "Record a refund…" in html

    response = client.post(
        f"/invoices/{invoice.pk}/refunds",
        {
            "refund-amount": "50.00",
            "refund-method": "bank_transfer",
            "refund-paid_on": timezone.localdate().isoformat(),
            "refund-reason": "One door not fitted",
            "refund-credit_invoice": "on",
        },
    )
    assert response.status_code == 302
    refund = Payment.objects.get(amount=Decimal(-50))
    note = CreditNote.objects.get()
    assert refund.credit_note == note
    assert note.total.amount == Decimal(50)
    html = page_of(client, invoice)
    assert (
        f"Refund of $50.00 recorded on {invoice.number}, with credit note {note.number}."
        in messages_of(html)
    )
    assert f"Bank transfer (refund, with credit note {note.number})" in html
    invoice.refresh_from_db()
    # Paid 300, given back 50 and owed 50 less: nothing is due and nothing owed back.
    assert (invoice.amount_paid, invoice.amount_credited, invoice.amount_due) == (
        Decimal(250),
        Decimal(50),
        Decimal(0),
    )
    # The customer sees the refund and its credit note on their own invoice page.
    customer_html = page_of(signed_in(alice), invoice)
    assert f"(refund, with credit note {note.number})" in customer_html
    assert '<dialog id="refund"' not in customer_html


def test_a_refund_of_an_overpayment_credits_nothing(admin: User, project_a: Project) -> None:
    invoice = paid(project_a, admin)
    client = signed_in(admin)
    response = client.post(
        f"/invoices/{invoice.pk}/refunds",
        {
            "refund-amount": "20.00",
            "refund-method": "check",
            "refund-paid_on": timezone.localdate().isoformat(),
            "refund-reason": "Paid twice by mistake",
        },
    )
    assert response.status_code == 302
    assert CreditNote.objects.count() == 0
    assert Payment.objects.get(amount=Decimal(-20)).credit_note is None
    html = page_of(client, invoice)
    assert f"Refund of $20.00 recorded on {invoice.number}." in messages_of(html)
    invoice.refresh_from_db()
    assert invoice.amount_due == Decimal(20)


def test_a_refused_refund_comes_back_in_its_dialog_and_changes_nothing(
    admin: User, project_a: Project
) -> None:
    invoice = paid(project_a, admin)
    client = signed_in(admin)
    body = {
        "refund-amount": "300.01",
        "refund-method": "bank_transfer",
        "refund-paid_on": timezone.localdate().isoformat(),
        "refund-reason": "Too much",
    }
    with unchanged():
        refused = client.post(f"/invoices/{invoice.pk}/refunds", body)
    assert refused.status_code == 422
    html = refused.content.decode()
    assert 'data-open-dialog="refund"' in html
    assert "is more than was paid on" in html
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    with unchanged():
        future = client.post(
            f"/invoices/{invoice.pk}/refunds",
            {**body, "refund-amount": "1.00", "refund-paid_on": tomorrow},
        )
    assert future.status_code == 422
    assert "A refund cannot be made in the future." in future.content.decode()
    with unchanged():
        empty = client.post(f"/invoices/{invoice.pk}/refunds", {"refund-amount": ""})
    assert empty.status_code == 422


def test_only_admins_record_refunds_and_unpaid_invoices_offer_none(
    admin: User, staff: User, alice: User, bob: User, project_a: Project
) -> None:
    invoice = paid(project_a, admin)
    body = {
        "refund-amount": "1.00",
        "refund-method": "bank_transfer",
        "refund-paid_on": timezone.localdate().isoformat(),
        "refund-reason": "x",
    }
    for user in (staff, alice, bob):
        client = signed_in(user)
        with unchanged():
            response = client.post(f"/invoices/{invoice.pk}/refunds", body)
        assert response.status_code == 404
    assert '<dialog id="refund"' not in page_of(signed_in(staff), invoice)
    unpaid = sent(project_a, admin, 2)
    assert '<dialog id="refund"' not in page_of(signed_in(admin), unpaid)


def test_a_crediting_refund_tells_its_story_without_a_moment_of_money_owed_back(
    admin: User, project_a: Project
) -> None:
    invoice = paid(project_a, admin)
    signed_in(admin).post(
        f"/invoices/{invoice.pk}/refunds",
        {
            "refund-amount": "60.00",
            "refund-method": "bank_transfer",
            "refund-paid_on": timezone.localdate().isoformat(),
            "refund-reason": "Paint",
            "refund-credit_invoice": "on",
        },
    )
    kinds = list(invoice.events.order_by("pk").values_list("kind", flat=True))
    assert kinds[-2:] == [EventKind.CREDITED, EventKind.REFUND_RECORDED]
    assert EventKind.CREDIT_OWED not in kinds
