from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal

from django.db import connection

from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus, InvoiceTotals
from tranche.billing.services.drafts import milestone_complete
from tranche.core.money import ZERO
from tranche.projects.models import Project


def draft_for(project: Project, position: int, by: User) -> Invoice:
    milestone = project.milestones.get(position=position)
    done = milestone_complete(actor=by, project_id=project.pk, milestone_id=milestone.pk)
    assert done.invoice is not None
    return done.invoice


@contextmanager
def triggers_dropped(migration_name: str) -> Iterator[None]:
    """The database triggers a billing migration made (its SQLITE_/PG_ FORWARD and
    BACKWARD lists) dropped inside the block and put back after it, in the test's own
    transaction."""
    migration = importlib.import_module(f"tranche.billing.migrations.{migration_name}")
    vendor = connection.vendor
    backward = {"sqlite": migration.SQLITE_BACKWARD, "postgresql": migration.PG_BACKWARD}[vendor]
    forward = {"sqlite": migration.SQLITE_FORWARD, "postgresql": migration.PG_FORWARD}[vendor]
    with connection.cursor() as cursor:
        for sql in backward:
            cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for sql in forward:
                cursor.execute(sql)


def sent_invoice_guard_lifted() -> AbstractContextManager[None]:
    """For a test that plays a row written by hand or before the database guarded sent
    invoices (migration 0009): the guard's triggers are lifted inside the block."""
    return triggers_dropped("0011_sent_invoice_guard")


Key = tuple[int, str, str, bool]


def summary_rows() -> dict[Key, tuple[int, ...]]:
    return {
        (r.customer_id, r.currency, r.status, r.sent): (
            r.count,
            r.amount,
            r.amount_paid,
            r.amount_due,
            r.credit_owed,
        )
        for r in InvoiceTotals.objects.filter(count__gt=0)
    }


def thousandths(amount: Decimal) -> int:
    scaled = amount * 1000
    assert scaled == scaled.to_integral_value(), amount
    return int(scaled)


def recounted_rows() -> dict[Key, tuple[int, ...]]:
    """Each key's count and sums, added up in Python from every invoice row (the amount
    due and credit owed as selectors.AMOUNT_DUE and CREDIT_OWED compute them)."""
    rows: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for i in Invoice.objects.all():
        due = max(i.amount - i.amount_credited - i.amount_paid, ZERO)
        if i.status == InvoiceStatus.CANCELLED:
            credit = max(i.amount_paid, ZERO)
        else:
            credit = max(i.amount_paid - (i.amount - i.amount_credited), ZERO)
        row = rows[(i.customer_id, i.currency, i.status, i.number is not None)]
        for n, value in enumerate((i.amount, i.amount_paid, due, credit), 1):
            row[n] += thousandths(value)
        row[0] += 1
    return {key: tuple(values) for key, values in rows.items()}
