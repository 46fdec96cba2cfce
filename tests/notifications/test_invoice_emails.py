"""The customer's invoice emails: branded, sent from the business's sender, the invoice
PDF attached when it is sent, and a receipt that says what was paid, how, when and what
is left."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import pytest
from django.utils import timezone
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.fakes.smtp_server import SmtpServer
from tests.helpers import AfterCommit
from tranche.accounts.business import business_row
from tranche.accounts.models import User
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.notifications import attachments
from tranche.notifications.delivery import ATTACHMENT_ATTEMPTS, outbox_deliver_due
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def branded(settings: Any) -> None:
    settings.DEFAULT_FROM_EMAIL = "billing@harbour.example"
    row = business_row()
    row.name = "Harbour & Sons"
    row.sender_name = "Harbour Billing"
    row.reply_to = "accounts@harbour.example"
    row.address = "1 Quay Street\nPortsmouth"
    row.tax_id = "GB123456789"
    row.bank_details = "IBAN GB33BUKB20201555555555"
    row.save()


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def attached(message: EmailMessage) -> list[tuple[str, str, bytes]]:
    found = []
    for part in message.iter_attachments():
        content = part.get_payload(decode=True)
        assert isinstance(content, bytes)
        found.append((part.get_filename() or "", part.get_content_type(), content))
    return found


def test_the_invoice_email_leaves_over_smtp_from_the_sender_with_the_pdf_attached(
    project_a: Project, admin: User, smtp: SmtpServer, after_commit: AfterCommit, branded: None
) -> None:
    with after_commit(execute=True):
        invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)

    [message] = smtp.messages
    assert message["From"] == "Harbour Billing <billing@harbour.example>"
    assert message["Reply-To"] == "accounts@harbour.example"
    [(name, kind, content)] = attached(message)
    assert (name, kind) == (f"{invoice.number}.pdf", "application/pdf")
    text = pdf_text(content)
    assert f"Invoice {invoice.number}" in text
    assert "Harbour & Sons" in text
    assert "GB123456789" in text
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for body in (html, plain):
        assert "attached to this email as a PDF" in body
        assert "IBAN GB33BUKB20201555555555" in body
        assert "1 Quay Street" in body
        assert invoice.payment_link in body
    assert "max-width:600px" in html
    assert "word-break:break-all" in html  # the pay link wraps on a phone


def test_a_pdf_that_cannot_be_made_holds_the_email_back_then_lets_it_go_without(
    project_a: Project,
    admin: User,
    smtp: SmtpServer,
    after_commit: AfterCommit,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(spec: Any) -> attachments.Attachment:
        raise OSError("pango is missing")

    monkeypatch.setitem(attachments._RENDERERS, "invoice_pdf", broken)
    with after_commit(execute=True):
        invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)

    email = OutboxEmail.objects.get()
    assert (email.status, email.attempts) == (OutboxStatus.PENDING, 1)
    assert "invoice_pdf: OSError: pango is missing" in email.last_error
    assert smtp.messages == []

    when = timezone.now()
    for _ in range(ATTACHMENT_ATTEMPTS - 1):
        when += timedelta(hours=1)
        outbox_deliver_due(now=when)
    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboxStatus.SENT, ATTACHMENT_ATTEMPTS)
    assert email.last_error.startswith("Sent without: invoice_pdf")
    [message] = smtp.messages
    assert attached(message) == []
    assert "goes without its attachment" in caplog.text


def test_an_attachment_kind_nobody_registered_is_reported_by_name() -> None:
    with pytest.raises(attachments.AttachmentUnavailable, match="'statement_pdf'"):
        attachments.render_attachment({"kind": "statement_pdf", "customer_id": 1})
    assert {"invoice_pdf", "receipt_pdf", "credit_note_pdf"} <= attachments.registered_kinds()


def test_the_receipt_says_what_was_paid_how_when_and_what_is_left(
    project_a: Project, admin: User, after_commit: AfterCommit
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    today = timezone.localdate()
    with after_commit(execute=True):
        payment_record_manual(
            actor=admin,
            invoice_id=invoice.pk,
            amount=Decimal("100.00"),
            method="bank_transfer",
            received_on=today - timedelta(days=1),
            reference="TRX-1",
        )
        payment_record_manual(
            actor=admin,
            invoice_id=invoice.pk,
            amount=Decimal("200.00"),
            method="check",
            received_on=today,
        )
    receipt = OutboxEmail.objects.get(kind="invoice_paid")
    for body in (receipt.body_text, receipt.body_html):
        assert "Bank transfer" in body
        assert "TRX-1" not in body  # the reference is the staff's note, not the customer's
        assert "Check" in body
        assert "$100.00" in body
        assert "$200.00" in body
        assert "$300.00" in body  # paid in total
        assert "$0.00" in body  # left to pay
        assert f"{today - timedelta(days=1):%b %-d, %Y}" in body
        assert "Nothing is left to pay on this invoice." in body


def test_the_paid_email_carries_the_receipt_of_the_payment_that_settled_it(
    project_a: Project, admin: User, smtp: SmtpServer, after_commit: AfterCommit
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    with after_commit(execute=True):
        payment_record_manual(
            actor=admin,
            invoice_id=invoice.pk,
            amount=Decimal("100.00"),
            method="bank_transfer",
            received_on=timezone.localdate(),
        )
        settling = payment_record_manual(
            actor=admin,
            invoice_id=invoice.pk,
            amount=Decimal("200.00"),
            method="check",
            received_on=timezone.localdate(),
        )

    [message] = [m for m in smtp.messages if "paid" in str(m["Subject"]).lower()]
    [(name, kind, content)] = attached(message)
    assert (name, kind) == (f"receipt-{invoice.number}-R2.pdf", "application/pdf")
    text = pdf_text(content)
    assert (invoice.number or "-") in text
    assert "$200.00" in text
    assert "Check" in text
    assert settling is not None
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Your receipt is attached to this email as a PDF." in plain
