"""Row locks of billing, in the one order used everywhere: customer, project, milestone,
invoice. A write that needs a project and one of its invoices takes them through
`lock_project_and_invoice`, never the invoice first: two transactions taking the same
rows in opposite orders would deadlock on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable

from tranche.billing.models import Invoice
from tranche.core.db import lock_many, lock_one, valid_id
from tranche.core.errors import NotFound
from tranche.projects.locks import lock_project
from tranche.projects.models import Project


def _missing(invoice_id: int) -> str:
    return f"Invoice {invoice_id} does not exist."


def lock_invoice(invoice_id: int) -> Invoice:
    return lock_one(Invoice, invoice_id, not_found=_missing(invoice_id))


def lock_invoices(invoice_ids: Iterable[int]) -> dict[int, Invoice]:
    """Many invoices at once (a bulk send), in pk order, each with its customer and
    project read along (not locked: take the projects' locks first when needed)."""
    return lock_many(Invoice, invoice_ids, related=("customer", "project"))


def lock_project_and_invoice(invoice_id: int) -> tuple[Project, Invoice]:
    # An invoice never moves to another project, so its project id can be read unlocked.
    project_id = (
        Invoice.objects.filter(pk=invoice_id).values_list("project_id", flat=True).first()
        if valid_id(invoice_id)
        else None
    )
    if project_id is None:
        raise NotFound(_missing(invoice_id))
    return lock_project(project_id), lock_invoice(invoice_id)
