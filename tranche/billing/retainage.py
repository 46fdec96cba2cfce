"""Retainage: a share of each milestone invoice's gross withheld until the work is done,
and billed back by a retainage release invoice.

The rule (docs/deposits-and-retainage.md):

- a milestone invoice bills its whole gross (tax is charged on the whole supply), withholds
  round_half_up(gross * p / 100) to the currency, and asks for the rest now (`amount`);
- withheld = Σ retainage of the project's live (draft or sent) milestone invoices,
  released = Σ amount of its live retainage release invoices, held = withheld - released;
- a release bills exactly what is held, so held never goes below zero and
  held + released = withheld always.

Pure arithmetic and reads here; the writes that keep the rule are in
services/retainage.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q, Sum

from tranche.billing.models import Invoice, InvoiceStatus, InvoiceType
from tranche.core.money import HUNDRED, ZERO, Money, quantum, round_money
from tranche.projects.models import Project

RELEASE_LINE_NAME = "Retainage release"


def withhold(gross: Decimal, percentage: Decimal, currency: str) -> Decimal:
    """The retainage withheld from `gross`: gross * p / 100 rounded half up to the
    currency. Never all of it: an invoice must still ask for one minor unit (p < 100, so
    only a gross of a few minor units could round up to itself)."""
    if percentage <= 0 or gross <= 0:
        return ZERO
    withheld = (gross * percentage / HUNDRED).quantize(quantum(currency), rounding=ROUND_HALF_UP)
    return min(withheld, gross - quantum(currency))


def apply_retainage(invoice: Invoice) -> None:
    """Split the invoice's gross (set in `amount` by apply_tax) into what is withheld and
    what is due now (not saved). A release withholds nothing."""
    gross = invoice.amount
    if invoice.invoice_type != InvoiceType.MILESTONE:
        invoice.retainage_amount = ZERO
        return
    invoice.retainage_amount = withhold(gross, invoice.retainage_percentage, invoice.currency)
    invoice.amount = gross - invoice.retainage_amount


@dataclass(frozen=True)
class Retainage:
    withheld: Money
    released: Money

    @property
    def held(self) -> Money:
        return self.withheld - self.released


def retainage_of(projects: list[Project]) -> dict[int, Retainage]:
    """Each project's retainage, in one query for a whole page of projects: what its
    live invoices withheld and released (drafts included: a draft release is what will
    be asked for, a draft's retainage what it will withhold)."""
    rows = (
        Invoice.objects.filter(project__in=projects)
        .exclude(status=InvoiceStatus.CANCELLED)
        .order_by()
        .values("project_id")
        .annotate(
            withheld_sum=Sum("retainage_amount", filter=Q(invoice_type=InvoiceType.MILESTONE)),
            released_sum=Sum("amount", filter=Q(invoice_type=InvoiceType.RETAINAGE_RELEASE)),
        )
    )
    sums = {row["project_id"]: (row["withheld_sum"], row["released_sum"]) for row in rows}
    result = {}
    for project in projects:
        withheld, released = sums.get(project.pk, (None, None))
        result[project.pk] = Retainage(
            withheld=_money(withheld, project.currency),
            released=_money(released, project.currency),
        )
    return result


def retainage_from(invoices: Iterable[Invoice], currency: str) -> Retainage:
    """`retainage_of` one project worked out from all its invoices, already read."""
    live = [i for i in invoices if i.status != InvoiceStatus.CANCELLED]
    withheld = sum(
        (i.retainage_amount for i in live if i.invoice_type == InvoiceType.MILESTONE), ZERO
    )
    released = sum(
        (i.amount for i in live if i.invoice_type == InvoiceType.RETAINAGE_RELEASE), ZERO
    )
    return Retainage(withheld=_money(withheld, currency), released=_money(released, currency))


def _money(total: object, currency: str) -> Money:
    # SQLite sums decimals as floats: round back to the currency's unit at once.
    return Money(round_money(Decimal(str(total or 0)), currency), currency)


def project_retainage(project: Project) -> Retainage:
    """The project's retainage (see `retainage_of`)."""
    return retainage_of([project])[project.pk]
