"""The public pay page /pay/<token>: what it shows, sandbox cards, Stripe's element."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client

from tests.billing.helpers import draft_for
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import AfterCommit, Api, db_state, unchanged
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus, Payment
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(project_a: Project, admin: User) -> Invoice:
    return invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)


def path(invoice: Invoice) -> str:
    assert invoice.pay_token
    return f"/pay/{invoice.pay_token}"


def test_the_pay_page_shows_what_is_being_paid(sent: Invoice) -> None:
    response = Client().get(path(sent))
    page = response.content.decode()
    assert response.status_code == 200
    for text in (
        "Harbour Build Co",
        f"Invoice {sent.number}",
        "Kitchen for A",
        "Step 1",
        "$300.00",
        f"{sent.due_date:%b %-d, %Y}",
        "Pending",
        "Sandbox — no real money",
    ):
        assert text in page
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize("token", ["nope", "x" * 65])
def test_an_unknown_link_is_a_friendly_404(token: str) -> None:
    response = Client().get(f"/pay/{token}")
    assert response.status_code == 404
    assert "This payment link does not work" in response.content.decode()


def test_a_truncated_link_is_the_sites_friendly_404() -> None:
    response = Client().get("/pay/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_a_cancelled_invoice_link_is_404(sent: Invoice, admin: User) -> None:
    invoice_cancel(actor=admin, invoice_id=sent.pk, reason="Wrong project")
    assert Client().get(path(sent)).status_code == 404
    with unchanged():
        assert Client().post(path(sent), {"card_number": "4242 4242 4242 4242"}).status_code == 404


def test_the_test_card_pays_once_and_the_receipt_goes_once(
    sent: Invoice, after_commit: AfterCommit
) -> None:
    customer = Client()
    with after_commit(execute=True):
        response = customer.post(path(sent), {"card_number": "4242 4242 4242 4242"}, follow=True)
    page = response.content.decode()
    sent.refresh_from_db()
    assert sent.status == InvoiceStatus.PAID
    assert sent.paid_at is not None
    assert f"Paid on {sent.paid_at:%b %-d, %Y}" in page
    assert "card_number" not in page
    [payment] = Payment.objects.all()
    assert (payment.method, payment.amount) == ("sandbox", sent.amount)

    with unchanged(), after_commit(execute=True):
        again = customer.post(path(sent), {"card_number": "4242 4242 4242 4242"}, follow=True)
    assert "there is nothing to pay" in again.content.decode()
    assert len([m for m in mail.outbox if m.subject.startswith("Receipt")]) == 1


def test_the_decline_card_is_declined_and_nothing_is_paid(sent: Invoice) -> None:
    response = Client().post(path(sent), {"card_number": "4000000000000002"}, follow=True)
    assert "Your card was declined" in response.content.decode()
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid) == (InvoiceStatus.PENDING, Decimal(0))
    assert sent.events.last().kind == "payment_failed"  # type: ignore[union-attr]
    assert Payment.objects.count() == 0


def test_other_card_numbers_are_explained(sent: Invoice) -> None:
    client = Client()
    client.get(path(sent))
    with unchanged():
        response = client.post(path(sent), {"card_number": "1234"}, follow=True)
    assert "pay with the test card 4242" in response.content.decode()


def test_a_partly_paid_invoice_is_paid_for_what_remains(
    sent: Invoice, as_: Callable[[str], Api]
) -> None:
    as_("admin").post(
        f"/api/projects/{sent.project_id}/invoices/{sent.pk}/payments",
        {"amount": "100.00", "method": "cash", "received_on": str(sent.issue_date)},
    )
    page = Client().get(path(sent)).content.decode()
    assert "Paid so far" in page
    assert "Pay $200.00" in page
    Client().post(path(sent), {"card_number": "4242424242424242"})
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid) == (InvoiceStatus.PAID, sent.amount)


def test_with_stripe_the_client_secret_is_in_the_page_only(
    project_a: Project,
    admin: User,
    fake_stripe: FakeStripe,
    settings: object,
    after_commit: AfterCommit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_tranche"  # type: ignore[attr-defined]
    with after_commit(execute=True):
        invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    intent = fake_stripe.intents[invoice.provider_reference or ""]
    secret = intent["client_secret"]
    page = Client().get(path(invoice)).content.decode()
    assert secret in page
    assert "pk_test_tranche" in page
    assert "js.stripe.com/v3" in page
    # Everywhere else the secret could leak: the email the customer receives, the log, and
    # whatever Tranche stored (the payment link on the invoice, events, the outbox).
    [email] = mail.outbox
    assert isinstance(email, mail.EmailMultiAlternatives)
    assert invoice.payment_link
    assert invoice.payment_link in email.body
    for text in (email.subject, email.body, *(str(a[0]) for a in email.alternatives)):
        assert secret not in text
    assert caplog.records
    assert secret not in caplog.text
    assert all(secret not in str(r.args) for r in caplog.records)
    assert secret not in str(db_state())
    assert fake_stripe.create_requests[0]["automatic_payment_methods"] == {
        "enabled": "true",
        "allow_redirects": "never",
    }


def test_returning_from_stripe_settles_through_the_same_path(
    project_a: Project, admin: User, fake_stripe: FakeStripe
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    client = Client()
    client.get(f"{path(invoice)}/done")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PENDING  # not paid at Stripe yet: nothing recorded

    intent = fake_stripe.intents[invoice.provider_reference or ""]
    intent.update(status="succeeded", amount_received=intent["amount"])
    response = client.get(f"{path(invoice)}/done", follow=True)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert "Paid on" in response.content.decode()
    client.get(f"{path(invoice)}/done")
    assert Payment.objects.count() == 1
