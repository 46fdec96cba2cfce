"""`tranche tick` with a controlled clock: overdue marking and each reminder step."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from tests.billing.helpers import draft_for
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.drafts import invoice_update_draft
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.sending import invoice_send
from tranche.notifications.delivery import outbox_deliver_due
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

SENT = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)


def day(n: int, hour: int = 10) -> datetime:
    return SENT + timedelta(days=n, hours=hour - 9)


def send(project: Project, admin: User, position: int = 1) -> Invoice:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project, position, admin).pk, now=SENT)
    assert invoice.due_date == timezone.localdate(SENT) + timedelta(days=14)
    return invoice


def reminder_steps(invoice: Invoice) -> list[str]:
    keys = OutboxEmail.objects.filter(key__startswith=f"invoice:{invoice.pk}:invoice_reminder:")
    return [k.rsplit(":", 1)[1] for k in keys.order_by("id").values_list("key", flat=True)]


def test_each_reminder_step_goes_out_once_on_its_day(project_a: Project, admin: User) -> None:
    invoice = send(project_a, admin)
    timeline = {
        0: [],
        10: [],
        11: ["-3"],
        12: ["-3"],
        14: ["-3", "0"],
        15: ["-3", "0"],
        21: ["-3", "0", "7"],
        27: ["-3", "0", "7"],
        28: ["-3", "0", "7", "14"],
        60: ["-3", "0", "7", "14"],
    }
    for n, expected in timeline.items():
        for _ in range(3):
            invoices_tick(now=day(n))
        assert reminder_steps(invoice) == expected, f"day {n}"


def test_a_hundred_ticks_in_a_day_send_a_step_once(project_a: Project, admin: User) -> None:
    invoice = send(project_a, admin)
    for minute in range(100):
        invoices_tick(now=day(11) + timedelta(minutes=minute))
    assert reminder_steps(invoice) == ["-3"]
    assert OutboxEmail.objects.filter(kind="invoice_reminder").count() == 1


def test_past_the_due_date_with_a_balance_it_becomes_overdue(
    project_a: Project, admin: User
) -> None:
    invoice = send(project_a, admin)
    invoices_tick(now=day(14))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PENDING  # due today is not overdue yet
    report = invoices_tick(now=day(15))
    invoice.refresh_from_db()
    assert (invoice.status, report.marked_overdue) == (InvoiceStatus.OVERDUE, 1)
    assert invoices_tick(now=day(16)).marked_overdue == 0
    change = invoice.events.filter(kind="status_changed").last()
    assert change is not None
    assert change.details == {"old": "pending", "new": "overdue"}


def test_a_partially_paid_invoice_becomes_overdue_and_reminders_mention_what_is_left(
    project_a: Project, admin: User
) -> None:
    invoice = send(project_a, admin)
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal("100.00"),
        method="cash",
        received_on=timezone.localdate(day(5)),
        now=day(5),
    )
    invoices_tick(now=day(21))
    # the worker's sweep on that day: the invoice email (its post-commit delivery never
    # ran here) and the reminder
    assert outbox_deliver_due(now=day(21)) == 2
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OVERDUE
    [reminder] = [m for m in mail.outbox if m.subject.startswith("Reminder")]
    assert reminder.subject == f"Reminder: invoice {invoice.number} ($200.00) is 7 days overdue"
    assert "Already paid:  $100.00" in reminder.body
    assert "Still due:     $200.00" in reminder.body
    assert invoice.payment_link in reminder.body


def test_paid_and_cancelled_invoices_get_no_reminders(project_a: Project, admin: User) -> None:
    paid = send(project_a, admin, 1)
    payment_record_manual(
        actor=admin,
        invoice_id=paid.pk,
        amount=Decimal("300.00"),
        method="cash",
        received_on=timezone.localdate(day(1)),
        now=day(1),
    )
    cancelled = send(project_a, admin, 2)
    invoice_cancel(actor=admin, invoice_id=cancelled.pk, reason="Billed elsewhere", now=day(1))
    for n in (11, 14, 21, 28):
        report = invoices_tick(now=day(n))
        assert report.reminders_queued == 0
    paid.refresh_from_db()
    cancelled.refresh_from_db()
    assert (paid.status, cancelled.status) == (InvoiceStatus.PAID, InvoiceStatus.CANCELLED)


def test_no_reminder_on_the_day_the_invoice_was_sent(project_a: Project, admin: User) -> None:
    draft = draft_for(project_a, 1, admin)
    invoice_update_draft(
        actor=admin, invoice_id=draft.pk, due_date=timezone.localdate(SENT), now=SENT
    )
    invoice = invoice_send(actor=admin, invoice_id=draft.pk, now=SENT)
    invoices_tick(now=day(0, hour=18))
    assert reminder_steps(invoice) == []
    invoices_tick(now=day(1))
    assert reminder_steps(invoice) == []  # step 0's day came before sending
    invoices_tick(now=day(7))
    assert reminder_steps(invoice) == ["7"]


def test_missed_ticks_send_only_the_latest_step(project_a: Project, admin: User) -> None:
    invoice = send(project_a, admin)
    invoices_tick(now=day(22))
    assert reminder_steps(invoice) == ["7"]


def test_the_steps_are_configurable(project_a: Project, admin: User, settings: object) -> None:
    settings.REMINDER_DAYS = [1]  # type: ignore[attr-defined]
    invoice = send(project_a, admin)
    for n in range(30):
        invoices_tick(now=day(n))
    assert reminder_steps(invoice) == ["1"]


def test_tranche_tick_prints_what_it_did(
    project_a: Project, admin: User, capsys: pytest.CaptureFixture[str]
) -> None:
    send(project_a, admin)
    call_command("tick")
    assert capsys.readouterr().out.startswith("tick: 0 marked overdue, 0 reminder(s) queued")
