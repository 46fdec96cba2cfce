"""Emails to the business's admins: each payment received, each payment that failed, and
a daily digest of the drafts waiting for review; each can be switched off in settings."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.billing.helpers import draft_for
from tests.factories import UserFactory
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import unchanged
from tranche.accounts.business import business_row
from tranche.accounts.models import Role, User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.emails import DIGEST_HOUR, drafts_digest_queue
from tranche.billing.services.payments import (
    SANDBOX_CARD_DECLINED,
    PaymentDeclined,
    payment_record_manual,
    sandbox_pay,
)
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_admin() -> User:
    return UserFactory.create(email="owner@tranche.example", role=Role.ADMIN)


@pytest.fixture
def retired_admin() -> User:
    return UserFactory.create(email="gone@tranche.example", role=Role.ADMIN, is_active=False)


def switch(**flags: bool) -> None:
    row = business_row()
    for name, value in flags.items():
        setattr(row, name, value)
    row.save()


def to_admins(kind: str) -> list[str]:
    return sorted(OutboxEmail.objects.filter(kind=kind).values_list("to", flat=True))


def morning(days: int = 0) -> datetime:
    local = timezone.localtime() + timedelta(days=days)
    return local.replace(hour=DIGEST_HOUR, minute=5)


# --- payment received ------------------------------------------------------------------------


def test_a_payment_paid_online_is_told_to_every_active_admin(
    project_a: Project, admin: User, second_admin: User, retired_admin: User, staff: User
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    sandbox_pay(invoice_id=invoice.pk, card_number="4242 4242 4242 4242")

    assert to_admins("admin_payment_received") == [admin.email, second_admin.email]
    email = OutboxEmail.objects.filter(kind="admin_payment_received").first()
    assert email is not None
    assert email.subject == (
        f"Payment received: $300.00 for invoice {invoice.number} (Acme Builders)"
    )
    assert "Card (sandbox)" in email.body_text
    assert f"http://testserver/projects/{project_a.pk}/" in email.body_text
    assert 'href="http://testserver/settings/#s-notify"' in email.body_html


def test_the_admin_who_recorded_a_transfer_is_not_told_of_it_but_the_others_are(
    project_a: Project, admin: User, second_admin: User
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal("100.00"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    assert to_admins("admin_payment_received") == [second_admin.email]
    [email] = OutboxEmail.objects.filter(kind="admin_payment_received")
    assert "Bank transfer" in email.body_text
    assert "Still due:     $200.00" in email.body_text


def test_payment_received_emails_can_be_switched_off(
    project_a: Project, admin: User, second_admin: User
) -> None:
    switch(notify_payment_received=False)
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    sandbox_pay(invoice_id=invoice.pk, card_number="4242424242424242")
    assert to_admins("admin_payment_received") == []
    assert Invoice.objects.get().status == InvoiceStatus.PAID


# --- payment failed --------------------------------------------------------------------------


def test_a_declined_card_is_told_to_the_admins_and_changes_nothing_else(
    project_a: Project, admin: User
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    with pytest.raises(PaymentDeclined):
        sandbox_pay(invoice_id=invoice.pk, card_number=SANDBOX_CARD_DECLINED)
    with pytest.raises(PaymentDeclined):
        sandbox_pay(invoice_id=invoice.pk, card_number=SANDBOX_CARD_DECLINED)

    # One email per failure: a customer trying twice is two attempts the admin may follow.
    assert to_admins("admin_payment_failed") == [admin.email, admin.email]
    email = OutboxEmail.objects.filter(kind="admin_payment_failed").first()
    assert email is not None
    assert email.subject.startswith(f"Payment failed: invoice {invoice.number} (Acme Builders")
    assert "Sandbox card declined" in email.body_text
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PENDING


def test_a_stripe_payment_failed_event_is_told_once_however_often_stripe_sends_it(
    project_a: Project, admin: User, fake_stripe: FakeStripe, settings: Any
) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    assert invoice.provider_reference
    payload = events.intent_failed(invoice.provider_reference, "Insufficient funds.")

    def deliver() -> int:
        return (
            Client()
            .post(
                "/api/webhooks/stripe",
                payload,
                content_type="application/json",
                headers={"Stripe-Signature": events.sign(payload)},
            )
            .status_code
        )

    assert deliver() == 200
    with unchanged():
        assert deliver() == 200  # the same event again: stored once, told once
    [email] = OutboxEmail.objects.filter(kind="admin_payment_failed")
    assert "Insufficient funds." in email.body_text
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PENDING, Decimal(0))


def test_payment_failed_emails_can_be_switched_off(project_a: Project, admin: User) -> None:
    switch(notify_payment_failed=False)
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    with pytest.raises(PaymentDeclined):
        sandbox_pay(invoice_id=invoice.pk, card_number=SANDBOX_CARD_DECLINED)
    assert to_admins("admin_payment_failed") == []
    assert invoice.events.filter(kind="payment_failed").count() == 1


# --- the daily digest -------------------------------------------------------------------------


def test_the_digest_lists_the_drafts_once_a_day_to_each_active_admin(
    project_a: Project, admin: User, second_admin: User, retired_admin: User
) -> None:
    draft_for(project_a, 1, admin)
    draft_for(project_a, 2, admin)

    assert drafts_digest_queue(now=morning()) == 2
    assert drafts_digest_queue(now=morning() + timedelta(hours=3)) == 0  # same day
    assert to_admins("admin_drafts_digest") == [admin.email, second_admin.email]
    email = OutboxEmail.objects.filter(kind="admin_drafts_digest").first()
    assert email is not None
    assert email.subject.startswith("2 draft invoices waiting for review")
    assert "Kitchen for A" in email.body_text
    assert "2 drafts in USD" in email.body_html
    assert "http://testserver/financials/?status=draft" in email.body_text

    assert drafts_digest_queue(now=morning(days=1)) == 2  # the next day, again


def test_no_digest_without_drafts_before_the_hour_or_when_switched_off(
    project_a: Project, admin: User
) -> None:
    assert drafts_digest_queue(now=morning()) == 0  # no drafts
    draft_for(project_a, 1, admin)
    assert drafts_digest_queue(now=morning() - timedelta(hours=2)) == 0  # too early
    switch(notify_daily_digest=False)
    assert drafts_digest_queue(now=morning()) == 0
    assert not OutboxEmail.objects.filter(kind="admin_drafts_digest").exists()


def test_the_periodic_pass_queues_the_digest(project_a: Project, admin: User) -> None:
    draft_for(project_a, 1, admin)
    summary = run_periodic(now=morning())
    assert "1 drafts digest(s) queued" in summary
    assert to_admins("admin_drafts_digest") == [admin.email]
