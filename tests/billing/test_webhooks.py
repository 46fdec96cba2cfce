"""POST /api/webhooks/stripe: verified, stored once, settled once, in any order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.billing.helpers import draft_for
from tests.concurrency import at_once
from tests.factories import make_project
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import AfterCommit, unchanged
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceStatus, Payment, StripeEvent
from tranche.billing.services.sending import invoice_send
from tranche.billing.webhooks import events_retry
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def webhook_secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]


def deliver(payload: str, signature: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {} if signature == "" else {"Stripe-Signature": signature or events.sign(payload)}
    response = Client().post(
        "/api/webhooks/stripe", payload, content_type="application/json", headers=headers
    )
    return response.status_code, response.json()


@pytest.fixture
def sent(project_a: Project, admin: User, fake_stripe: FakeStripe) -> Invoice:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    assert invoice.provider_reference
    return invoice


def intent(invoice: Invoice) -> str:
    assert invoice.provider_reference
    return invoice.provider_reference


def test_a_succeeded_payment_intent_pays_the_invoice_once_and_sends_one_receipt(
    sent: Invoice, after_commit: AfterCommit
) -> None:
    with after_commit(execute=True):
        status, body = deliver(events.intent_succeeded(intent(sent), 30000))

    assert (status, body) == (200, {"received": True, "outcome": "settled"})
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid) == (InvoiceStatus.PAID, Decimal(300))
    assert sent.paid_at is not None
    [payment] = Payment.objects.all()
    assert (payment.method, payment.provider_reference) == ("stripe", sent.provider_reference)
    assert [m.subject for m in mail.outbox if m.subject.startswith("Receipt")] == [
        f"Receipt: invoice {sent.number} from Harbour Build Co is paid"
    ]


def test_a_redelivered_event_is_acknowledged_and_changes_nothing(sent: Invoice) -> None:
    payload = events.intent_succeeded(intent(sent), 30000, event_id="evt_same")
    assert deliver(payload)[0] == 200
    with unchanged():
        status, body = deliver(payload)
    assert (status, body["outcome"]) == (200, "duplicate")
    assert Payment.objects.count() == 1


def test_two_events_for_the_same_success_settle_once(sent: Invoice) -> None:
    assert deliver(events.intent_succeeded(intent(sent), 30000))[1]["outcome"] == "settled"
    assert deliver(events.intent_succeeded(intent(sent), 30000))[1]["outcome"] == "already settled"
    assert Payment.objects.count() == 1
    assert StripeEvent.objects.count() == 2


@pytest.mark.parametrize(
    "signature_for",
    [
        lambda payload: "",
        lambda payload: "t=1,v1=deadbeef",
        lambda payload: "garbage",
        lambda payload: events.sign("{}"),
        lambda payload: events.sign(payload, secret="whsec_someone_else"),
        lambda payload: events.sign(payload, timestamp=int(timezone.now().timestamp()) - 301),
    ],
    ids=["empty", "made-up", "garbage", "another-payload", "wrong-secret", "stale"],
)
def test_a_missing_or_bad_signature_is_400_and_writes_nothing(
    sent: Invoice, signature_for: Callable[[str], str]
) -> None:
    payload = events.intent_succeeded(intent(sent), 30000)
    signature = signature_for(payload)
    with unchanged():
        status, body = deliver(payload, signature)
    assert status == 400
    assert body["code"] == "webhook_signature_invalid"


def test_during_secret_rotation_both_secrets_are_accepted(sent: Invoice, settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_new", events.WEBHOOK_SECRET]
    payload = events.intent_succeeded(intent(sent), 30000)
    assert deliver(payload, events.sign(payload, secret=events.WEBHOOK_SECRET))[0] == 200
    other = events.intent_failed(intent(sent))
    assert deliver(other, events.sign(other, secret="whsec_new"))[0] == 200


def test_a_failed_payment_is_audited_and_the_invoice_stays_payable(sent: Invoice) -> None:
    status, _ = deliver(events.intent_failed(intent(sent), "Insufficient funds."))
    assert status == 200
    sent.refresh_from_db()
    assert sent.status == InvoiceStatus.PENDING
    last = sent.events.last()
    assert last is not None
    assert (last.kind, last.details) == ("payment_failed", {"message": "Insufficient funds."})


def test_a_late_failure_after_success_does_not_move_the_status_back(sent: Invoice) -> None:
    deliver(events.intent_succeeded(intent(sent), 30000))
    deliver(events.intent_failed(intent(sent)))
    sent.refresh_from_db()
    assert sent.status == InvoiceStatus.PAID


def test_refunds_record_negative_payments_and_move_the_status_back(sent: Invoice) -> None:
    deliver(events.intent_succeeded(intent(sent), 30000))
    assert deliver(events.charge_refunded(intent(sent), 10000))[1]["outcome"] == "refund recorded"
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid, sent.paid_at) == (
        InvoiceStatus.PARTIALLY_PAID,
        Decimal(200),
        None,
    )
    # Stripe reports refunds cumulatively; the same total again records nothing more.
    assert (
        deliver(events.charge_refunded(intent(sent), 10000))[1]["outcome"]
        == "refund already recorded"
    )
    deliver(events.charge_refunded(intent(sent), 30000))
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid) == (InvoiceStatus.PENDING, Decimal(0))
    assert sorted(p.amount for p in Payment.objects.all()) == [-200, -100, 300]


@pytest.mark.parametrize(
    ("refunds", "paid_after"),
    [
        pytest.param([("ch_1", 99999999)], 300, id="one-charge-refunding-more-than-was-paid"),
        pytest.param([("ch_1", 30000), ("ch_2", 30000)], 0, id="a-second-charge-refunding-again"),
    ],
)
def test_a_refund_never_gives_back_more_than_the_payment_took(
    sent: Invoice, refunds: list[tuple[str, int]], paid_after: int
) -> None:
    """A signed charge.refunded of 999,999.99 once made a 300.00 invoice owe 999,999.99."""
    deliver(events.intent_succeeded(intent(sent), 30000))
    outcomes = [
        deliver(events.charge_refunded(intent(sent), minor, charge_id=charge))[1]["outcome"]
        for charge, minor in refunds
    ]

    assert outcomes[-1].startswith("refused: A refund of ")
    assert "would give back more than" in outcomes[-1]
    sent.refresh_from_db()
    assert (sent.amount_paid, sent.amount_due) == (Decimal(paid_after), 300 - Decimal(paid_after))


def test_a_refund_that_arrives_before_its_payment_waits_for_it(sent: Invoice) -> None:
    assert deliver(events.charge_refunded(intent(sent), 10000))[1]["outcome"].startswith("waiting")
    assert Payment.objects.count() == 0
    deliver(events.intent_succeeded(intent(sent), 30000))
    assert events_retry().processed == 1
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid) == (InvoiceStatus.PARTIALLY_PAID, Decimal(200))


def test_a_success_for_an_invoice_not_yet_visible_is_stored_and_settled_later(
    project_a: Project, admin: User, fake_stripe: FakeStripe
) -> None:
    early = events.intent_succeeded("pi_not_yet_known", 30000)
    assert deliver(early)[1]["outcome"].startswith("waiting")
    stored = StripeEvent.objects.get()
    assert stored.processed_at is None

    draft = draft_for(project_a, 1, admin)
    invoice = invoice_send(actor=admin, invoice_id=draft.pk)
    Invoice.objects.filter(pk=invoice.pk).update(provider_reference="pi_not_yet_known")
    assert events_retry().processed == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_an_event_that_never_becomes_settleable_is_given_up_after_three_days() -> None:
    deliver(events.intent_succeeded("pi_unknown", 100))
    assert events_retry(now=timezone.now() + timedelta(days=4)).processed == 0
    stored = StripeEvent.objects.get()
    assert stored.processed_at is not None
    assert stored.outcome.startswith("gave up")


def test_unknown_event_types_are_stored_and_ignored(sent: Invoice) -> None:
    status, body = deliver(events.event("customer.created", {"id": "cus_1"}))
    assert (status, body["outcome"]) == (200, "ignored")


def test_a_payment_in_another_currency_is_refused(sent: Invoice) -> None:
    status, body = deliver(events.intent_succeeded(intent(sent), 30000, currency="eur"))
    assert status == 200
    assert body["outcome"].startswith("refused")
    assert Payment.objects.count() == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_five_concurrent_deliveries_of_one_event_settle_once(
    admin: User, customer_a: Customer, fake_stripe: FakeStripe, settings: Any
) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]
    invoice = invoice_send(
        actor=admin,
        invoice_id=draft_for(make_project(actor=admin, customer=customer_a), 1, admin).pk,
    )
    payload = events.intent_succeeded(intent(invoice), 30000, event_id="evt_concurrent")
    signature = events.sign(payload)

    statuses = at_once(5, lambda: deliver(payload, signature)[0])

    assert statuses == [200] * 5
    assert StripeEvent.objects.count() == 1
    assert Payment.objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.events.filter(kind="payment_recorded").count() == 1


def test_a_stripe_refund_of_money_owed_back_is_linked_to_the_credit_note_that_made_it_owed(
    sent: Invoice, admin: User
) -> None:
    from tranche.billing.services.crediting import credit_note_issue

    deliver(events.intent_succeeded(intent(sent), 30000))
    note = credit_note_issue(actor=admin, invoice_id=sent.pk, amount=Decimal(50), reason="Late")
    sent.refresh_from_db()
    assert (sent.status, sent.credit_owed) == (InvoiceStatus.PAID, Decimal(50))

    deliver(events.charge_refunded(intent(sent), 5000))
    refund = Payment.objects.get(amount=-50)
    assert refund.credit_note_id == note.pk
    sent.refresh_from_db()
    assert (sent.status, sent.credit_owed, sent.amount_due) == (
        InvoiceStatus.PAID,
        Decimal(0),
        Decimal(0),
    )

    # Beyond what was owed, Stripe cannot say the customer owes less: no credit note, and
    # the amount is due again (an admin credits it from the invoice page if it is not).
    deliver(events.charge_refunded(intent(sent), 15000))
    again = Payment.objects.get(amount=-100)
    assert again.credit_note_id is None
    sent.refresh_from_db()
    assert (sent.status, sent.amount_due) == (InvoiceStatus.PARTIALLY_PAID, Decimal(100))
