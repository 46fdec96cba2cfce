from __future__ import annotations

from decimal import Decimal

from tranche.accounts.models import User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send
from tranche.projects.amendment import ScheduleChange
from tranche.projects.models import ChangeOrder, Project
from tranche.projects.services_change_orders import change_order_create
from tranche.sales.terms import LineInput


def line(description: str, amount: str, quantity: str = "1") -> LineInput:
    return LineInput(description, Decimal(quantity), Decimal(amount))


def change_order(
    project: Project,
    by: User,
    *lines: LineInput,
    schedule: tuple[ScheduleChange, ...] = (),
    title: str = "More work",
) -> ChangeOrder:
    return change_order_create(
        actor=by,
        project_id=project.pk,
        title=title,
        lines=list(lines) if lines else None,
        schedule=schedule,
    )


def sent(invoice: Invoice, by: User) -> Invoice:
    return invoice_send(actor=by, invoice_id=invoice.pk)
