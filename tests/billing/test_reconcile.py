"""`tranche reconcile`: a missed webhook does not leave an invoice unpaid forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.fakes.stripe_server import FakeStripe
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus, Payment
from tranche.billing.services.reconcile import reconcile_payments
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def succeed_at_stripe(fake: FakeStripe, invoice: Invoice) -> None:
    intent = fake.intents[invoice.provider_reference or ""]
    intent.update(status="succeeded", amount_received=intent["amount"])


def test_a_payment_that_succeeded_without_a_webhook_is_settled_once(
    project_a: Project, admin: User, fake_stripe: FakeStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    sent_at = timezone.now() - timedelta(hours=2)
    paid = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk, now=sent_at)
    unpaid = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk, now=sent_at)
    too_young = invoice_send(actor=admin, invoice_id=draft_for(project_a, 3, admin).pk)
    succeed_at_stripe(fake_stripe, paid)
    succeed_at_stripe(fake_stripe, too_young)

    call_command("reconcile")
    output = capsys.readouterr().out
    assert (
        f"{paid.number}: recorded $300.00 paid through {paid.provider_reference}; "
        "the invoice is now paid" in output
    )
    assert "reconcile: 2 invoice(s) checked, 1 change(s)" in output
    statuses = {i.pk: i.status for i in Invoice.objects.all()}
    assert statuses == {
        paid.pk: InvoiceStatus.PAID,
        unpaid.pk: InvoiceStatus.PENDING,
        too_young.pk: InvoiceStatus.PENDING,
    }

    checked, lines = reconcile_payments()
    assert (checked, lines) == (1, [])
    assert Payment.objects.count() == 1


def test_when_the_provider_is_down_it_says_so_and_changes_nothing(
    project_a: Project, admin: User, fake_stripe: FakeStripe
) -> None:
    invoice = invoice_send(
        actor=admin,
        invoice_id=draft_for(project_a, 1, admin).pk,
        now=timezone.now() - timedelta(hours=2),
    )
    fake_stripe.mode = "declined_key"
    checked, lines = reconcile_payments()
    assert checked == 1
    assert lines == [
        f"{invoice.number}: could not ask the provider "
        "(Stripe refused the API key (check STRIPE_SECRET_KEY))"
    ]
    assert Payment.objects.count() == 0
