"""The benchmark's data generator (bench/generate.py) keeps the app's invariants, so
`make bench` measures data the app could have made. A small scale, on both databases."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db.models import Count, Q, Sum
from django.utils import timezone

from bench.generate import generate
from tranche.accounts.models import User
from tranche.accounts.services import token_authenticate
from tranche.billing.models import (
    CreditNote,
    Invoice,
    InvoiceEvent,
    InvoiceNumberSequence,
    InvoiceStatus,
    InvoiceTaxLine,
    Payment,
)
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Milestone, Project

pytestmark = pytest.mark.django_db


def test_a_small_generated_book_keeps_the_apps_invariants():
    started = time.perf_counter()
    result = generate(scale=0.005, seed=7, verbose=False)
    elapsed = time.perf_counter() - started
    counts = result["counts"]

    # The sizes scale 1 multiplies: 5 customers, 50 projects, 250 milestones, 500 invoices.
    assert (counts["customers"], counts["projects"], counts["milestones"]) == (5, 50, 250)
    assert Invoice.objects.count() == counts["invoices"] == 500
    # Every status is there.
    statuses = Counter(Invoice.objects.values_list("status", flat=True))
    assert set(statuses) == set(InvoiceStatus.values)

    # Each milestone has at most one invoice that is not cancelled, and has one exactly
    # when it is completed.
    live = Invoice.objects.exclude(status=InvoiceStatus.CANCELLED)
    assert not live.values("milestone").annotate(n=Count("id")).filter(n__gt=1).exists()
    completed = set(Milestone.objects.filter(status="completed").values_list("id", flat=True))
    assert set(live.values_list("milestone_id", flat=True)) == completed

    # Amounts: the tax line adds up to the invoice; the live invoices never bill more than
    # the contract; amount_paid is the sum of the payments; a credited invoice has a
    # credit note for all of it.
    for line in InvoiceTaxLine.objects.select_related("invoice"):
        invoice = line.invoice
        assert line.gross_amount == invoice.amount == invoice.net_amount + invoice.tax_amount
        assert line.net_amount == invoice.contract_amount
    billed: dict[int, Decimal] = dict(
        live.values_list("project").annotate(billed=Sum("contract_amount"))
    )
    for project in Project.objects.all():
        assert billed.get(project.pk, Decimal(0)) <= project.contract_total
    paid: dict[int, Decimal] = dict(
        Payment.objects.values_list("invoice").annotate(received=Sum("amount"))
    )
    for invoice in Invoice.objects.all():
        assert invoice.amount_paid == paid.get(invoice.pk, Decimal(0)), invoice.pk
        if invoice.status == InvoiceStatus.PAID:
            assert invoice.amount_paid == invoice.amount
        if invoice.status in (InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE):
            assert invoice.amount_paid < invoice.amount
    credited = Invoice.objects.filter(status=InvoiceStatus.CREDITED)
    for invoice in credited:
        assert invoice.amount_credited == invoice.amount
        assert CreditNote.objects.get(invoice=invoice).amount == invoice.amount

    # Numbers: unique, gap-free per year in sending order, the sequence at the last one.
    by_year = defaultdict(list)
    for number, sent_at in (
        Invoice.objects.exclude(number=None).order_by("sent_at").values_list("number", "sent_at")
    ):
        assert sent_at is not None
        by_year[sent_at.year].append(number)
    assert sum(len(v) for v in by_year.values()) == Invoice.objects.exclude(number=None).count()
    for year, numbers in by_year.items():
        assert numbers == [f"INV-{year}-{n:05d}" for n in range(1, len(numbers) + 1)]
        assert InvoiceNumberSequence.objects.get(year=year).last_number == len(numbers)
    assert not Invoice.objects.filter(status=InvoiceStatus.DRAFT).exclude(number=None).exists()

    # The audit trail and the outbox: every invoice was created, every sent one was sent
    # and emailed once.
    sent = Invoice.objects.exclude(sent_at=None)
    assert InvoiceEvent.objects.filter(kind="created").count() == 500
    assert InvoiceEvent.objects.filter(kind="sent").count() == sent.count()
    assert OutboxEmail.objects.filter(kind="invoice_sent").count() == sent.count()
    assert not OutboxEmail.objects.exclude(status="sent").exists()

    # Only the due set is due: pending invoices past their due date.
    today = timezone.localdate()
    overdue_to_be = Invoice.objects.filter(
        Q(status=InvoiceStatus.PENDING) | Q(status=InvoiceStatus.PARTIALLY_PAID),
        due_date__lt=today,
    )
    assert overdue_to_be.count() == counts["invoices_due"] == 5

    # The load's credentials work.
    admin = User.objects.get(email=result["users"]["admin"])
    assert admin.check_password(result["password"])
    assert token_authenticate(token=result["tokens"]["admin"]) == admin
    assert elapsed < 10
