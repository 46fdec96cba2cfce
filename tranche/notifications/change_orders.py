"""Sending a change order to the customer: marked sent and its email queued in one
transaction (as notifications.quotes does for quotes)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.accounts.models import User
from tranche.core.money import Money
from tranche.notifications.services import outbox_enqueue
from tranche.projects.models import ChangeOrder
from tranche.projects.services_change_orders import change_order_mark_sent


def change_order_link(change_order: ChangeOrder) -> str:
    return f"{settings.BASE_URL}/change-orders/{change_order.pk}/"


def change_order_send(
    *, actor: User, change_order_id: int, now: datetime | None = None
) -> ChangeOrder:
    """Send a draft (or re-send a sent) change order to the customer's billing email with
    a link to read and approve it in the portal. The email leaves only after the commit."""
    now = now or timezone.now()
    with transaction.atomic():
        event = change_order_mark_sent(actor=actor, change_order_id=change_order_id, now=now)
        change_order = event.change_order
        project = change_order.project
        customer = project.customer
        currency = project.currency
        lines = list(change_order.lines.all())
        after = sum((line.line_total for line in lines), Money.zero(currency).amount)
        outbox_enqueue(
            key=f"change_order:{change_order.pk}:sent:{event.pk}",
            kind="change_order_sent",
            to=customer.billing_email,
            template="change_order_sent",
            context={
                "reference": change_order.reference,
                "title": change_order.title,
                "project_name": project.name,
                "lines": [(line.description, Money(line.line_total, currency)) for line in lines],
                "before": project.contract,
                "after": Money(after, currency),
                "business_name": business_profile().name,
                "greeting_name": customer.contact_name or customer.name,
                "link": change_order_link(change_order),
            },
            now=now,
        )
    return change_order
