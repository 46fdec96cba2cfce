"""What the periodic pass costs: the database finds what is due, so a pass with nothing
due costs the same whatever the number of open invoices, and a pass with reminders due
costs per reminder due. What it reports is what it did."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing.helpers import draft_for
from tranche.accounts.models import User
from tranche.billing.models import Invoice
from tranche.billing.services import reminders
from tranche.billing.services.emails import queue_invoice_email
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

# What a pass that finds nothing due may cost: 15 queries for the pass itself, and 2 for
# data retention's look for Stripe payloads and email bodies old enough to blank.
QUIET_PASS_QUERIES = 17

pytestmark = pytest.mark.django_db

SENT = (timezone.now() - timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def day(n: int, hour: int = 10) -> datetime:
    return SENT + timedelta(days=n, hours=hour - 9)


def open_invoices(project: Project, admin: User, count: int) -> list[Invoice]:
    """`count` sent invoices due 14 days after SENT: one sent through the service, the
    others copies of it (a number, token and reference of their own, no milestone), as
    many open invoices of other projects would be."""
    first = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk, now=SENT)
    copies = []
    for n in range(1, count):
        copy = Invoice.objects.get(pk=first.pk)
        copy.pk = None
        copy.milestone = None
        copy.number = f"{first.number}-{n}"
        copy.pay_token = f"{first.pay_token}-{n}"
        copy.provider_reference = f"{first.provider_reference}-{n}"
        copies.append(copy)
    return [first, *Invoice.objects.bulk_create(copies)]


def queries_of(action: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [q["sql"] for q in captured.captured_queries]


def test_a_pass_with_nothing_due_costs_the_same_for_1_and_for_50_open_invoices(
    project_a: Project, admin: User
) -> None:
    [first] = open_invoices(project_a, admin, 1)
    assert run_periodic(now=day(11)).startswith("tick: 0 marked overdue, 1 reminder(s) queued")
    one_open = queries_of(lambda: run_periodic(now=day(11, hour=12)))

    # 49 more, reminded too, as after the pass that reminded them.
    copies = []
    for n in range(1, 50):
        copy = Invoice.objects.get(pk=first.pk)
        copy.pk = None
        copy.milestone = None
        copy.number = f"{first.number}-{n}"
        copy.pay_token = f"{first.pay_token}-{n}"
        copy.provider_reference = f"{first.provider_reference}-{n}"
        copies.append(copy)
    Invoice.objects.bulk_create(copies)
    assert "49 reminder(s) queued" in run_periodic(now=day(11, hour=13))
    fifty_open = queries_of(lambda: run_periodic(now=day(11, hour=14)))

    assert len(fifty_open) == len(one_open), "\n".join(fifty_open)
    assert len(one_open) <= QUIET_PASS_QUERIES, "\n".join(one_open)
    assert OutboxEmail.objects.filter(kind="invoice_reminder").count() == 50


def test_a_pass_with_nothing_due_renders_nothing_and_inserts_nothing(
    project_a: Project, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps already sent are not rendered again only for the outbox key to refuse them."""
    open_invoices(project_a, admin, 20)
    run_periodic(now=day(11))
    rendered: list[str] = []

    def counting(invoice: Invoice, kind: str, **kwargs: Any) -> bool:
        rendered.append(kind)
        return queue_invoice_email(invoice, kind, **kwargs)

    monkeypatch.setattr("tranche.billing.services.reminders.queue_invoice_email", counting)

    for n in (11, 12, 13):  # -3 went out; 0 is due on day 14
        report = invoices_tick(now=day(n, hour=15))
        assert (report.reminders_queued, report.failed) == (0, 0)

    assert rendered == []
    assert len(queries_of(lambda: invoices_tick(now=day(13)))) == len(
        queries_of(lambda: invoices_tick(now=day(12)))
    )


def test_the_cost_of_a_pass_grows_with_the_reminders_due_not_with_the_open_invoices(
    project_a: Project, admin: User
) -> None:
    invoices = open_invoices(project_a, admin, 50)
    run_periodic(now=day(11))  # step -3 for all fifty, and the emails delivered
    quiet = len(queries_of(lambda: run_periodic(now=day(12))))

    def pass_with_due(due: int) -> int:
        """The queries of day 14's pass when step 0 went out before for all but `due`."""
        OutboxEmail.objects.filter(key__endswith=":invoice_reminder:0").delete()
        OutboxEmail.objects.bulk_create(
            OutboxEmail(
                key=f"invoice:{invoice.pk}:invoice_reminder:0",
                kind="invoice_reminder",
                to=invoice.customer_email,
                subject="sent before",
                body_text="",
                status="sent",
                next_attempt_at=day(14),
                created_at=day(14),
            )
            for invoice in invoices[due:]
        )
        queries = len(queries_of(lambda: run_periodic(now=day(14))))
        assert OutboxEmail.objects.filter(subject__contains="is due today").count() == due
        return queries

    cost = {due: pass_with_due(due) for due in (0, 1, 2, 4)}

    assert cost[0] == quiet <= QUIET_PASS_QUERIES
    per_reminder = cost[2] - cost[1]
    assert per_reminder > 0
    assert cost[4] - cost[2] == 2 * per_reminder


def test_a_reminder_the_outbox_refuses_is_not_counted_as_queued(
    project_a: Project, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two passes racing: the other one queued the step between this pass's look for
    what is due and its insert. The key refuses the second copy and the report says so."""
    [invoice] = open_invoices(project_a, admin, 1)
    real = reminders._reminders_due

    def raced(**kwargs: Any) -> list[int]:
        due = real(**kwargs)
        assert due == [invoice.pk]
        OutboxEmail.objects.create(
            key=f"invoice:{invoice.pk}:invoice_reminder:-3",
            kind="invoice_reminder",
            to=invoice.customer_email,
            subject="queued by the other pass",
            body_text="",
            next_attempt_at=day(11),
            created_at=day(11),
        )
        return due

    monkeypatch.setattr(reminders, "_reminders_due", raced)

    report = invoices_tick(now=day(11))

    assert (report.reminders_queued, report.failed) == (0, 0)
    [only] = OutboxEmail.objects.filter(kind="invoice_reminder")
    assert only.subject == "queued by the other pass"
    assert run_periodic(now=day(11)).startswith("tick: 0 marked overdue, 0 reminder(s) queued")
