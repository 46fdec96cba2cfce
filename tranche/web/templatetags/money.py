"""Money on the pages. Models give their amounts as Money, which templates print as they
are (`{{ invoice.due }}`); these helpers cover the reads that still hold Decimal amounts
beside a currency (the financial totals, a project's milestone shares)."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

from django import template

from tranche.billing.selectors import CurrencyTotals, ProjectSummary
from tranche.core.money import Money
from tranche.projects.models import Milestone
from tranche.projects.selectors import ProjectDetail

register = template.Library()


@register.filter
def in_money(totals: ProjectSummary | CurrencyTotals) -> dict[str, Money]:
    """Every amount of a totals row as Money in the row's currency:
    `{% with s=summary|in_money %}{{ s.paid_amount }}{% endwith %}`."""
    return {
        field.name: Money(value, totals.currency)
        for field in fields(totals)
        if isinstance(value := getattr(totals, field.name), Decimal)
    }


@register.simple_tag
def amount_of(detail: ProjectDetail, milestone: Milestone) -> Money:
    return detail.amount_of(milestone)
