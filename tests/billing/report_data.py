"""Invoices in every state, made through the real services, for the financial reports'
tests: drafts, sent invoices (at a chosen moment, so they can be overdue), payments."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice
from tranche.billing.services.drafts import milestone_complete
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project


def project_with(
    admin: User,
    customer: Customer,
    *,
    milestones: int = 4,
    total: str = "1000.00",
    currency: str = "USD",
    title: str = "Boathouse",
) -> Project:
    """A project whose `milestones` billable steps share `total` equally."""
    share = Decimal(100) / milestones
    assert share == share.quantize(Decimal("0.01")), "choose a count that divides 100"
    return make_project(
        actor=admin,
        customer=customer,
        total=total,
        currency=currency,
        title=title,
        percentages=tuple(str(share) for _ in range(milestones)),
    )


def drafts(project: Project, admin: User, *, now: datetime | None = None) -> list[Invoice]:
    """Complete every pending milestone: one draft each, oldest first."""
    made = []
    for milestone in project.milestones.order_by("position"):
        done = milestone_complete(
            actor=admin, project_id=project.pk, milestone_id=milestone.pk, now=now
        )
        assert done.invoice is not None
        made.append(done.invoice)
    return made


def sent(
    invoice: Invoice, admin: User, *, days_ago: int, now: datetime, tick: bool = True
) -> Invoice:
    """Sent `days_ago` days before `now` (due 14 days after that), then flagged overdue
    if so by the periodic pass (`tick=False`: the caller runs it once for many)."""
    done = invoice_send(actor=admin, invoice_id=invoice.pk, now=now - timedelta(days=days_ago))
    if tick:
        invoices_tick(now=now)
    done.refresh_from_db()
    return done


def paid(invoice: Invoice, admin: User, *, on: datetime, amount: str | None = None) -> Invoice:
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal(amount) if amount else invoice.amount,
        method="bank_transfer",
        received_on=on.date(),
        now=on,
    )
    invoice.refresh_from_db()
    return invoice
