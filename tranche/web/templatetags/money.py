from __future__ import annotations

from decimal import Decimal

from django import template

from tranche.core.money import format_for_people
from tranche.projects.models import Milestone
from tranche.projects.selectors import ProjectDetail

register = template.Library()


@register.simple_tag
def money(amount: Decimal, currency: str) -> str:
    return format_for_people(amount, currency)


@register.simple_tag
def amount_of(detail: ProjectDetail, milestone: Milestone) -> str:
    return format_for_people(detail.amounts[milestone.pk], detail.project.currency)
