"""Flaw 6: every item of every periodic step is isolated. One that raises is logged and
counted, the pass goes on with the others, and `run_periodic` reports it instead of
raising. Faults are injected into one item's collaborator, or written into one row as a
bad migration or a hand edit would."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.billing.helpers import draft_for, sent_invoice_guard_lifted
from tests.fakes.smtp_server import SmtpServer
from tranche.accounts.models import User
from tranche.billing.audit import record_event as record_event_for_real
from tranche.billing.models import Invoice, InvoiceStatus, StripeEvent
from tranche.billing.services.payments import settle_intent_succeeded
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.sending import invoice_send
from tranche.billing.webhooks import events_retry, webhook_receive
from tranche.notifications import delivery
from tranche.notifications.delivery import outbox_deliver_due
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

# Yesterday morning: always in the past, so what it queued is due whatever the hour the
# suite runs at (today at 09:00 was still ahead of a run before nine).
SENT = (timezone.now() - timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def day(n: int) -> datetime:
    return SENT + timedelta(days=n, hours=1)


def send_three(project: Project, admin: User) -> list[Invoice]:
    return [
        invoice_send(actor=admin, invoice_id=draft_for(project, n, admin).pk, now=SENT)
        for n in (1, 2, 3)
    ]


def test_an_invoice_that_cannot_be_marked_overdue_does_not_stop_the_others(
    project_a: Project, admin: User, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    first, broken, last = send_three(project_a, admin)
    real = record_event_for_real

    def record_event(invoice: Invoice, *args: Any, **kwargs: Any) -> None:
        if invoice.pk == broken.pk:
            raise RuntimeError("audit table unavailable for this row")
        real(invoice, *args, **kwargs)

    monkeypatch.setattr("tranche.billing.services.reminders.record_event", record_event)

    report = invoices_tick(now=day(15))

    statuses = dict(Invoice.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: InvoiceStatus.OVERDUE,
        broken.pk: InvoiceStatus.PENDING,  # its own transaction rolled back
        last.pk: InvoiceStatus.OVERDUE,
    }
    assert (report.marked_overdue, report.failed) == (2, 1)
    assert f"Could not mark invoice {broken.pk} overdue" in caplog.text


def test_an_invoice_whose_reminder_cannot_be_written_does_not_stop_the_others(
    project_a: Project, admin: User, caplog: Any
) -> None:
    first, broken, last = send_three(project_a, admin)
    # A currency no formatter knows, as a hand edit of the row would leave it.
    with sent_invoice_guard_lifted():
        Invoice.objects.filter(pk=broken.pk).update(currency="ZZZ")

    report = invoices_tick(now=day(11))

    reminded = sorted(
        int(key.split(":")[1])
        for key in OutboxEmail.objects.filter(kind="invoice_reminder").values_list("key", flat=True)
    )
    assert reminded == [first.pk, last.pk]
    assert (report.reminders_queued, report.failed) == (2, 1)
    assert f"Could not queue a reminder for invoice {broken.pk}" in caplog.text
    assert run_periodic(now=day(11)).endswith(", 1 failure(s)")


def test_an_email_whose_delivery_raises_does_not_stop_the_others(
    project_a: Project, admin: User, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    send_three(project_a, admin)  # three invoice emails queued; after commit never ran
    first, broken, last = OutboxEmail.objects.order_by("pk")
    real = delivery._message

    # The three are claimed together and sent over one connection; the middle one's
    # message cannot be made.
    def message(email: OutboxEmail, now: datetime) -> Any:
        if email.pk == broken.pk:
            raise RuntimeError("a template tag blew up")
        return real(email, now)

    monkeypatch.setattr(delivery, "_message", message)

    assert outbox_deliver_due() == 2

    statuses = dict(OutboxEmail.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: OutboxStatus.SENT,
        broken.pk: OutboxStatus.PENDING,  # tried again after its backoff
        last.pk: OutboxStatus.SENT,
    }
    assert len(smtp.messages) == 2
    assert f"Could not deliver outbox email {broken.pk}" in caplog.text


def test_an_event_whose_settlement_raises_waits_and_the_next_one_settles(
    project_a: Project,
    admin: User,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]
    first, broken, last = send_three(project_a, admin)
    real = settle_intent_succeeded

    def settle(**kwargs: Any) -> Any:
        if kwargs["intent_id"] == broken.provider_reference:
            raise RuntimeError("lost the database connection")
        return real(**kwargs)

    monkeypatch.setattr("tranche.billing.webhooks.settle_intent_succeeded", settle)

    def payload(invoice: Invoice) -> str:
        assert invoice.provider_reference
        return events.intent_succeeded(invoice.provider_reference, int(invoice.amount * 100))

    # In the request the error is logged and the event kept for the worker: no 500.
    broken_payload = payload(broken)
    outcome = webhook_receive(
        payload=broken_payload.encode(), signature=events.sign(broken_payload)
    )
    assert outcome == "waiting: error RuntimeError"
    # Two more wait behind it, as events stored while their invoices were not visible.
    for invoice in (first, last):
        body = json.loads(payload(invoice))
        StripeEvent.objects.create(
            event_id=body["id"], event_type=body["type"], payload=body, received_at=timezone.now()
        )

    report = events_retry()

    assert (report.processed, report.failed) == (2, 1)
    assert f"Stripe event {json.loads(broken_payload)['id']}" in caplog.text
    waiting = StripeEvent.objects.get(processed_at__isnull=True)
    assert (waiting.outcome, waiting.attempts) == ("waiting: error RuntimeError", 2)
    statuses = dict(Invoice.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: InvoiceStatus.PAID,
        broken.pk: InvoiceStatus.PENDING,
        last.pk: InvoiceStatus.PAID,
    }

    monkeypatch.setattr("tranche.billing.webhooks.settle_intent_succeeded", real)
    assert events_retry().processed == 1
    broken.refresh_from_db()
    assert broken.status == InvoiceStatus.PAID


def test_the_periodic_pass_reports_a_failed_step_and_runs_the_next(
    project_a: Project, admin: User, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    send_three(project_a, admin)

    def broken_tick(**kwargs: Any) -> Any:
        raise RuntimeError("the invoices query failed")

    monkeypatch.setattr("tranche.billing.services.periodic.invoices_tick", broken_tick)

    summary = run_periodic()

    assert summary == (
        "tick: 0 marked overdue, 0 reminder(s) queued, 0 waiting webhook event(s) processed, "
        "0 PaymentIntent(s) brought in step, 3 email(s) delivered, 1 failure(s)"
    )
    assert "The overdue and reminder step failed" in caplog.text
