"""Receipts (one PDF per payment, on the invoice page and the pay page), the send preview,
and the emails staff ask for by hand: the invoice again, a reminder now."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.helpers import unchanged
from tranche.accounts.models import Customer, User
from tranche.billing.models import EventKind, Invoice, Payment
from tranche.billing.pdf import DocumentUnavailable, html_to_pdf
from tranche.billing.receipts import receipt_of, receipt_pdf
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.emails import invoice_email_context, queue_invoice_email
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.reminders import invoice_remind_now
from tranche.billing.services.sending import invoice_resend, invoice_send, invoice_send_preview
from tranche.core.errors import Conflict, Invalid
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def text_of(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def sent(project_a: Project, admin: User) -> Invoice:
    return invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)


def pay(admin: User, invoice: Invoice, amount: str, method: str = "bank_transfer") -> Payment:
    recorded = payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal(amount),
        method=method,
        received_on=timezone.localdate(),
        reference=f"REF-STAFF-ONLY-{amount}",
    )
    assert recorded.payment is not None
    return recorded.payment


# --- receipts ---------------------------------------------------------------------------------


def test_a_receipt_says_what_was_paid_how_when_and_what_is_left(sent: Invoice, admin: User) -> None:
    first = pay(admin, sent, "120.00")
    pay(admin, sent, "180.00", method="check")

    receipt = receipt_of(first)
    assert receipt.number == f"{sent.number}-R1"
    assert str(receipt.amount) == "$120.00"
    assert str(receipt.left_to_pay) == "$180.00"

    text = text_of(receipt_pdf(first))
    for line in (
        "Harbour Build Co",
        "Receipt",
        f"For invoice {sent.number}",
        "Acme Builders",
        "Bank transfer",
        "$120.00",
        "Invoice total $300.00",
        "Paid to date $120.00",
        "Left to pay $180.00",
    ):
        assert line in text
    assert "REF-STAFF-ONLY" not in text  # not on the customer's allow-list
    assert "admin@tranche.example" not in text


def test_the_last_receipt_says_the_invoice_is_paid_in_full(sent: Invoice, admin: User) -> None:
    pay(admin, sent, "100.00")
    last = pay(admin, sent, "200.00", method="cash")
    text = text_of(receipt_pdf(last))
    assert f"Receipt {sent.number}-R2" in text
    assert "Cash" in text
    assert "Left to pay $0.00" in text
    assert f"invoice {sent.number} is paid in full" in text


def test_invoices_and_receipts_share_one_html_to_pdf_step_that_fails_with_the_same_error(
    sent: Invoice, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pango(name: str, *args: object, **kwargs: object) -> object:
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    payment = pay(admin, sent, "10.00")
    monkeypatch.setattr(builtins, "__import__", no_pango)
    with pytest.raises(DocumentUnavailable):
        html_to_pdf("<p>x</p>")
    with pytest.raises(DocumentUnavailable):
        receipt_pdf(payment)


def test_the_pay_page_offers_the_receipt_once_money_came_in(sent: Invoice, admin: User) -> None:
    assert sent.pay_token
    page = Client().get(f"/pay/{sent.pay_token}").content.decode()
    assert "Download receipt" not in page
    assert Client().get(f"/pay/{sent.pay_token}/receipt.pdf").status_code == 404

    pay(admin, sent, "100.00")
    pay(admin, sent, "200.00")
    page = Client().get(f"/pay/{sent.pay_token}").content.decode()
    assert f'href="/pay/{sent.pay_token}/receipt.pdf">Download receipt (PDF)' in page
    response = Client().get(f"/pay/{sent.pay_token}/receipt.pdf")
    assert response["Content-Type"] == "application/pdf"
    text = text_of(response.content)
    assert f"Receipt {sent.number}-R2" in text  # the latest payment
    assert "Left to pay $0.00" in text


# --- the send preview -------------------------------------------------------------------------


def test_the_send_preview_is_the_email_the_send_queues_and_takes_nothing(
    project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    now = timezone.now()
    with unchanged():
        preview = invoice_send_preview(invoice=draft, now=now)
    assert preview.email.to == "accounts@acme.example"
    assert preview.invoice.number == f"INV-{timezone.localdate(now).year}-00001"
    assert preview.invoice.due_date == timezone.localdate(now) + timedelta(days=14)
    assert draft.number is None  # the invoice itself is untouched

    sent = invoice_send(actor=admin, invoice_id=draft.pk, now=now)
    queued = OutboxEmail.objects.get(kind="invoice_sent")
    assert queued.subject == preview.email.subject
    # The same text but the payment link, which only the send itself makes.
    assert queued.body_text == preview.email.text.replace(
        preview.invoice.payment_link, sent.payment_link
    )


def test_queued_emails_and_previews_are_rendered_from_one_context(sent: Invoice) -> None:
    context = invoice_email_context(sent, "invoice_reminder", when="is due today")
    assert context["invoice"] is sent
    assert context["greeting_name"] == "Casey Contact"
    assert context["when"] == "is due today"


# --- the invoice email again ------------------------------------------------------------------


def test_an_admin_emails_a_sent_invoice_again_each_time_with_its_own_outbox_row(
    sent: Invoice, admin: User
) -> None:
    invoice_resend(actor=admin, invoice_id=sent.pk)
    invoice_resend(actor=admin, invoice_id=sent.pk)
    keys = sorted(OutboxEmail.objects.filter(kind="invoice_sent").values_list("key", flat=True))
    assert keys == [
        f"invoice:{sent.pk}:invoice_sent",
        f"invoice:{sent.pk}:invoice_sent:resend-1",
        f"invoice:{sent.pk}:invoice_sent:resend-2",
    ]
    events = sent.events.filter(kind=EventKind.EMAIL_RESENT)
    assert [(e.actor, e.details) for e in events] == [
        (admin, {"to": "accounts@acme.example"}),
        (admin, {"to": "accounts@acme.example"}),
    ]


def test_a_draft_a_paid_or_a_cancelled_invoice_is_not_emailed_again(
    project_a: Project, admin: User, sent: Invoice
) -> None:
    draft = draft_for(project_a, 2, admin)
    third = invoice_send(actor=admin, invoice_id=draft_for(project_a, 3, admin).pk)
    invoice_cancel(actor=admin, invoice_id=third.pk, reason="Scope changed")
    pay(admin, sent, "300.00")
    for invoice in (draft, sent, third):
        with unchanged(), pytest.raises(Conflict) as refused:
            invoice_resend(actor=admin, invoice_id=invoice.pk)
        assert refused.value.code == "invoice_not_open"


# --- a reminder now ---------------------------------------------------------------------------


def test_a_reminder_now_goes_out_once_a_day_and_says_when_the_invoice_is_due(
    sent: Invoice, admin: User
) -> None:
    # Noon: an hour later is the same day whenever the suite runs (late at night too).
    today = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    invoice_remind_now(actor=admin, invoice_id=sent.pk, now=today)
    email = OutboxEmail.objects.get(kind="invoice_reminder")
    assert email.key == f"invoice:{sent.pk}:invoice_reminder:now-{timezone.localdate(today)}"
    assert email.subject == f"Reminder: invoice {sent.number} ($300.00) is due in 14 days"
    with unchanged(), pytest.raises(Conflict) as again:
        invoice_remind_now(actor=admin, invoice_id=sent.pk, now=today + timedelta(hours=1))
    assert again.value.code == "reminder_already_sent_today"

    later = today + timedelta(days=20)
    invoice_remind_now(actor=admin, invoice_id=sent.pk, now=later)
    assert OutboxEmail.objects.filter(kind="invoice_reminder").count() == 2
    assert OutboxEmail.objects.latest("id").subject.endswith("is 6 days overdue")
    assert sent.events.filter(kind=EventKind.REMINDER_SENT, actor=admin).count() == 2


def test_the_scheduled_reminders_are_not_blocked_by_a_reminder_now(
    sent: Invoice, admin: User
) -> None:
    from django.db import transaction

    now = timezone.now()
    invoice_remind_now(actor=admin, invoice_id=sent.pk, now=now)
    with transaction.atomic():
        assert queue_invoice_email(sent, "invoice_reminder", now=now, step="0", when="is due today")


def test_no_reminder_for_an_invoice_with_nothing_due_or_no_email(
    project_a: Project, admin: User, sent: Invoice
) -> None:
    draft = draft_for(project_a, 2, admin)
    pay(admin, sent, "300.00")
    for invoice in (draft, sent):
        with unchanged(), pytest.raises(Conflict):
            invoice_remind_now(actor=admin, invoice_id=invoice.pk)

    third = invoice_send(actor=admin, invoice_id=draft_for(project_a, 3, admin).pk)
    Invoice.objects.filter(pk=third.pk).update(customer_email="")
    Customer.objects.filter(pk=third.customer_id).update(billing_email="")
    with unchanged(), pytest.raises(Invalid) as refused:
        invoice_remind_now(actor=admin, invoice_id=third.pk)
    assert refused.value.code == "customer_email_missing"


@pytest.mark.parametrize("again", ["resend", "remind"])
def test_emailing_again_goes_to_the_billing_email_the_customer_has_now(
    sent: Invoice, admin: User, again: str
) -> None:
    """The first email went to a mistyped address; staff fix the customer, then resend."""
    Customer.objects.filter(pk=sent.customer_id).update(billing_email="right@acme.example")

    if again == "resend":
        invoice_resend(actor=admin, invoice_id=sent.pk)
    else:
        invoice_remind_now(actor=admin, invoice_id=sent.pk)

    sent.refresh_from_db()
    assert sent.customer_email == "right@acme.example"
    latest = OutboxEmail.objects.order_by("-pk").first()
    assert latest is not None
    assert latest.to == "right@acme.example"
    event = sent.events.order_by("-pk").first()
    assert event is not None
    assert event.details["to"] == "right@acme.example"
