"""One invoice's page: what staff and the customer see, and every action on it, each
announced with the service's own sentence; every refusal changes nothing."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import Customer, User
from tranche.billing.models import EventKind, Invoice, Payment
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def page_of(client: Client, invoice: Invoice) -> str:
    response = client.get(f"/invoices/{invoice.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def text_of(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def pay(admin: User, invoice: Invoice, amount: str, **kw: Any) -> Payment:
    recorded = payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal(amount),
        method=kw.get("method", "bank_transfer"),
        received_on=timezone.localdate(),
        reference=kw.get("reference", ""),
    )
    assert recorded.payment is not None
    return recorded.payment


def messages_of(html: str) -> str:
    start = html.index('id="messages"')
    return html[start : html.index("</div>", start)]


# --- what each person sees ----------------------------------------------------------------


def test_an_admin_sees_the_draft_as_the_customer_will_with_its_send_preview(
    admin: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    html = page_of(signed_in(admin), draft)
    assert "Draft invoice" in html
    assert "Acme Builders" in html  # the document's bill-to, inside the page
    assert "Milestone 1 of 3" in html
    assert "<iframe" not in html
    assert "<style" not in html
    # The Send dialog names the recipient and the amount and shows the email itself.
    assert '<dialog id="send"' in html
    assert "Send $300.00 to accounts@acme.example" in html
    year = timezone.localdate().year
    assert f"It will be numbered <strong>INV-{year}-00001</strong>" in html
    assert f"Invoice INV-{year}-00001 from" in html  # the email's subject
    assert "Hello Casey Contact," in html  # its text body
    assert f"/invoices/{draft.pk}/invoice.pdf" in html
    assert 'name="amount"' in html
    assert 'name="due_date"' in html
    assert "Draft created for $300.00." in html  # the timeline
    assert OutboxEmail.objects.count() == 0  # a preview queues nothing


def test_the_email_preview_is_the_html_email_with_inline_styles_allowed_only_there(
    admin: User, staff: User, alice: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    response = signed_in(staff).get(f"/invoices/{draft.pk}/email-preview")
    assert response.status_code == 200
    assert "style-src 'unsafe-inline'" in response["Content-Security-Policy"]
    assert "script-src" not in response["Content-Security-Policy"]
    assert "Hello Casey Contact," in response.content.decode()
    assert signed_in(alice).get(f"/invoices/{draft.pk}/email-preview").status_code == 404


def test_staff_read_the_page_but_are_offered_no_admin_action(
    admin: User, staff: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    html = page_of(signed_in(staff), draft)
    assert "Draft created for $300.00." in html
    assert '<dialog id="send"' not in html
    assert 'name="due_date"' not in html
    assert "Only an admin can edit, send, cancel or record payments" in html


def test_the_customer_sees_her_sent_invoice_with_pay_pdf_and_receipts_and_no_staff_words(
    admin: User, alice: User, project_a: Project
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    payment = pay(admin, invoice, "100.00", reference="BANK-REF-9")
    html = page_of(signed_in(alice), invoice)
    assert f"Invoice {invoice.number}" in html
    assert "Partially paid" in html
    assert (
        f'href="{invoice.payment_link}" aria-label="Pay $200.00 for invoice {invoice.number}">'
        "Pay $200.00</a>"
    ) in html
    assert "Download PDF" in html
    assert f"/invoices/{invoice.pk}/payments/{payment.pk}/receipt.pdf" in html
    for staff_only in ("Timeline", "BANK-REF-9", "admin@tranche.example", "Record a payment"):
        assert staff_only not in html
    assert "Send" not in html.split('id="content"')[1].replace("sent", "")


def test_other_customers_and_customers_asking_for_drafts_get_404(
    admin: User, alice: User, bob: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    payment = pay(admin, sent, "10.00")
    for path in (
        f"/invoices/{sent.pk}/",
        f"/invoices/{sent.pk}/invoice.pdf",
        f"/invoices/{sent.pk}/payments/{payment.pk}/receipt.pdf",
    ):
        assert signed_in(bob).get(path).status_code == 404
    assert signed_in(alice).get(f"/invoices/{draft.pk}/").status_code == 404
    assert signed_in(alice).get(f"/invoices/{draft.pk}/invoice.pdf").status_code == 404
    assert signed_in(alice).get("/invoices/999999/").status_code == 404
    # A payment of another invoice is not reachable through this one.
    assert (
        signed_in(admin).get(f"/invoices/{draft.pk}/payments/{payment.pk}/receipt.pdf").status_code
        == 404
    )


def test_the_page_costs_the_same_queries_with_one_or_many_payments(
    admin: User, project_a: Project
) -> None:
    one = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    pay(admin, one, "1.00")
    many = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    for n in range(20):
        pay(admin, many, "1.00", reference=f"R{n}")
    client = signed_in(admin)
    page_of(client, one)  # warm the session and the template caches
    with CaptureQueriesContext(connection) as few:
        page_of(client, one)
    with CaptureQueriesContext(connection) as lots:
        page_of(client, many)
    assert len(lots) == len(few)


# --- actions --------------------------------------------------------------------------------


def test_saving_a_draft_unchanged_changes_nothing_and_leaves_its_due_date_to_the_terms(
    admin: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    client = signed_in(admin)
    html = page_of(client, draft)
    # The field is empty: sending sets the due date from the customer's terms.
    assert 'name="due_date" value=' not in html
    assert "Leave it empty to use the customer's payment terms" in html

    with unchanged():
        saved = client.post(
            f"/invoices/{draft.pk}/edit",
            {"amount": "300.00", "description": draft.description, "due_date": ""},
        )
    assert saved.status_code == 302
    assert not draft.events.filter(kind=EventKind.EDITED).exists()


def test_an_admin_edits_the_draft_and_a_bad_amount_is_shown_beside_the_field(
    admin: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    client = signed_in(admin)
    due = (timezone.localdate() + timedelta(days=30)).isoformat()
    with unchanged():
        refused = client.post(
            f"/invoices/{draft.pk}/edit",
            {"amount": "5000.00", "description": "Design", "due_date": due},
        )
    assert refused.status_code == 422
    html = refused.content.decode()
    sentence = "$5,000.00 is more than remains unbilled on the contract ($1,000.00)."
    assert sentence in messages_of(html)
    assert html.count(sentence) == 2  # in the live region and beside the amount
    assert 'aria-invalid="true"' in html

    saved = client.post(
        f"/invoices/{draft.pk}/edit",
        {"amount": "250.00", "description": "Design approval", "due_date": due},
    )
    assert saved.status_code == 302
    draft.refresh_from_db()
    assert (draft.amount, draft.description, draft.due_date.isoformat()) == (
        Decimal("250.00"),
        "Design approval",
        due,
    )
    html = page_of(client, draft)
    assert "Draft saved." in messages_of(html)
    assert "Draft edited: amount $300.00 → $250.00" in html


def test_an_admin_sends_from_the_dialog_and_the_customer_is_emailed(
    admin: User, project_a: Project, after_commit: Any
) -> None:
    draft = draft_for(project_a, 1, admin)
    client = signed_in(admin)
    with after_commit(execute=True):
        response = client.post(f"/invoices/{draft.pk}/send-now")
    assert response["Location"] == f"/invoices/{draft.pk}/"
    draft.refresh_from_db()
    assert draft.status == "pending"
    assert [m.to for m in mail.outbox] == [["accounts@acme.example"]]
    html = page_of(client, draft)
    assert f"Invoice {draft.number} sent to accounts@acme.example for $300.00" in messages_of(html)
    assert f"Sent to the customer as {draft.number}." in html


def test_a_send_without_a_billing_email_is_refused_with_the_way_to_fix_it(
    admin: User, customer_a: Customer, project_a: Project
) -> None:
    customer_a.billing_email = ""
    customer_a.save()
    draft = draft_for(project_a, 1, admin)
    client = signed_in(admin)
    html = page_of(client, draft)
    assert f'href="/customers/{customer_a.pk}/edit"' in html
    assert "Send $300.00" not in html  # no confirm button that can only fail
    with unchanged():
        client.post(f"/invoices/{draft.pk}/send-now")
    html = page_of(client, draft)
    assert (
        "Acme Builders has no billing email, so the invoice cannot be sent. Add one to the "
        "customer, then send again." in messages_of(html)
    )


def test_a_billing_email_added_after_the_draft_was_made_is_the_one_the_send_uses(
    admin: User, customer_a: Customer, project_a: Project
) -> None:
    customer_a.billing_email = ""
    customer_a.save()
    draft = draft_for(project_a, 1, admin)
    customer_a.billing_email = "new@acme.example"
    customer_a.save()
    sent = invoice_send(actor=admin, invoice_id=draft.pk)
    assert sent.customer_email == "new@acme.example"


def test_staff_and_customers_cannot_act_on_an_invoice(
    admin: User, staff: User, alice: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    posts = [
        (draft, "edit", {"amount": "1.00", "description": "x", "due_date": "2030-01-01"}),
        (draft, "send-now", {}),
        (draft, "cancel", {"reason": "no"}),
        (sent, "payments", {"amount": "1.00", "method": "cash", "received_on": "2026-01-01"}),
        (sent, "resend", {}),
        (sent, "remind", {}),
    ]
    for user in (staff, alice):
        client = signed_in(user)
        for invoice, action, data in posts:
            with unchanged():
                assert client.post(f"/invoices/{invoice.pk}/{action}", data).status_code == 404


def test_an_admin_cancels_with_a_reason_and_a_missing_reason_is_refused(
    admin: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    client = signed_in(admin)
    with unchanged():
        refused = client.post(f"/invoices/{sent.pk}/cancel", {"reason": "  "})
    assert refused.status_code == 422
    html = refused.content.decode()
    assert "Say why the invoice is cancelled." in messages_of(html)
    assert 'data-open-dialog="cancel"' in html

    client.post(f"/invoices/{sent.pk}/cancel", {"reason": "Client changed the scope"})
    sent.refresh_from_db()
    assert (sent.status, sent.cancel_reason) == ("cancelled", "Client changed the scope")
    html = page_of(client, sent)
    assert f"Invoice {sent.number} cancelled." in messages_of(html)
    assert "Cancelled. Reason: Client changed the scope" in html


def test_an_invoice_with_payments_offers_no_cancel_and_the_service_refuses_it(
    admin: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    pay(admin, sent, "10.00")
    client = signed_in(admin)
    html = page_of(client, sent)
    assert "It has payments, so it cannot be cancelled" in html
    assert '<dialog id="cancel"' not in html
    with unchanged():
        refused = client.post(f"/invoices/{sent.pk}/cancel", {"reason": "oops"})
    assert "has payments and cannot be cancelled" in messages_of(refused.content.decode())


def test_an_admin_records_a_bank_transfer_in_two_parts_until_it_is_paid(
    admin: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    client = signed_in(admin)
    html = page_of(client, sent)
    assert 'name="amount" value="300.00"' in html  # the amount due, by default
    today = timezone.localdate().isoformat()
    data = {"method": "bank_transfer", "reference": "TRX-1", "received_on": today}
    client.post(f"/invoices/{sent.pk}/payments", {**data, "amount": "100.00"})
    assert "$200.00 is still due." in messages_of(page_of(client, sent))
    with unchanged():
        refused = client.post(
            f"/invoices/{sent.pk}/payments", {**data, "amount": "500.00", "reference": "TRX-2"}
        )
    assert refused.status_code == 422
    sentence = "$500.00 is more than the amount due ($200.00)."
    assert refused.content.decode().count(sentence) == 2
    with unchanged():
        taken = client.post(f"/invoices/{sent.pk}/payments", {**data, "amount": "1.00"})
    assert (
        "A payment with reference &#x27;TRX-1&#x27; is already recorded" in taken.content.decode()
    )

    client.post(
        f"/invoices/{sent.pk}/payments",
        {**data, "amount": "200.00", "method": "check", "reference": "CHQ 7"},
    )
    sent.refresh_from_db()
    assert sent.status == "paid"
    html = page_of(client, sent)
    assert "It is paid in full." in messages_of(html)
    assert html.count(">Receipt (PDF)</a>") == 2
    assert "Check" in html
    assert 'data-dialog="payment"' not in html  # nothing left to record


def test_the_resend_announcement_names_the_address_it_went_to_now(
    admin: User, project_a: Project, customer_a: Customer
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    Customer.objects.filter(pk=customer_a.pk).update(billing_email="fixed@acme.example")
    client = signed_in(admin)
    client.post(f"/invoices/{sent.pk}/resend")
    html = page_of(client, sent)
    assert f"Invoice {sent.number} emailed again to fixed@acme.example." in messages_of(html)


def test_an_admin_emails_the_invoice_again_and_reminds_at_most_once_a_day(
    admin: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    client = signed_in(admin)
    client.post(f"/invoices/{sent.pk}/resend")
    client.post(f"/invoices/{sent.pk}/resend")
    html = page_of(client, sent)
    assert f"Invoice {sent.number} emailed again to accounts@acme.example." in messages_of(html)
    assert OutboxEmail.objects.filter(kind="invoice_sent").count() == 3
    assert html.count("Invoice email sent again to accounts@acme.example.") == 2

    client.post(f"/invoices/{sent.pk}/remind")
    assert f"Reminder of {sent.number} sent" in messages_of(page_of(client, sent))
    reminder = OutboxEmail.objects.get(kind="invoice_reminder")
    assert f"Reminder: invoice {sent.number} ($300.00) is due in 14 days" == reminder.subject
    with unchanged():
        client.post(f"/invoices/{sent.pk}/remind")
    assert "was already sent today" in messages_of(page_of(client, sent))
    assert sent.events.filter(kind=EventKind.REMINDER_SENT).count() == 1


def test_a_paid_invoice_is_neither_emailed_again_nor_reminded(
    admin: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    pay(admin, sent, "300.00")
    client = signed_in(admin)
    assert "Send a reminder now" not in page_of(client, sent)
    for action in ("resend", "remind"):
        with unchanged():
            client.post(f"/invoices/{sent.pk}/{action}")
        assert "is paid; only a sent invoice with an amount due" in messages_of(
            page_of(client, sent)
        )


# --- documents ------------------------------------------------------------------------------


def test_the_customer_downloads_the_invoice_and_each_receipt_from_her_page(
    admin: User, alice: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    first = pay(admin, sent, "100.00")
    second = pay(admin, sent, "200.00", method="cash")
    client = signed_in(alice)
    document = client.get(f"/invoices/{sent.pk}/invoice.pdf")
    assert document["Content-Type"] == "application/pdf"
    assert f"Invoice {sent.number}" in text_of(document.content)

    receipt = client.get(f"/invoices/{sent.pk}/payments/{first.pk}/receipt.pdf")
    assert receipt["Content-Disposition"] == f'inline; filename="receipt-{sent.number}-R1.pdf"'
    text = text_of(receipt.content)
    assert f"For invoice {sent.number}" in text
    assert "Acme Builders" in text
    assert "Bank transfer" in text
    assert "Left to pay $200.00" in text

    text = text_of(client.get(f"/invoices/{sent.pk}/payments/{second.pk}/receipt.pdf").content)
    assert f"Receipt {sent.number}-R2" in text
    assert "Cash" in text
    assert "Paid to date $300.00" in text
    assert "Left to pay $0.00" in text
    assert "paid in full" in text


def test_a_payment_form_missing_its_values_says_so_beside_each_field(
    admin: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    client = signed_in(admin)
    with unchanged():
        refused = client.post(f"/invoices/{sent.pk}/payments", {"amount": "", "method": "bitcoin"})
    assert refused.status_code == 422
    html = refused.content.decode()
    assert "The payment was not recorded: correct the fields marked below." in messages_of(html)
    assert 'data-open-dialog="payment"' in html  # the dialog opens again, with the errors
    assert html.count("This field is required.") == 2  # amount, date received
    assert "Select a valid choice." in html
