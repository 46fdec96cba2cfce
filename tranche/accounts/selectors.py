"""Reads for accounts, always scoped to the caller."""

from __future__ import annotations

from django.db.models import QuerySet

from tranche.accounts.access import require_staff
from tranche.accounts.models import Customer, User
from tranche.core.db import valid_id
from tranche.core.errors import NotFound


def customer_list(*, user: User) -> QuerySet[Customer]:
    require_staff(user)
    return Customer.objects.all()


def access_customer(user: User, customer_id: int) -> Customer:
    """Customer records are staff business; a customer user is refused before any lookup."""
    require_staff(user)
    customer = Customer.objects.filter(pk=customer_id).first() if valid_id(customer_id) else None
    if customer is None:
        raise NotFound(f"Customer {customer_id} does not exist.", code="customer_not_found")
    return customer


def active_user_by_email(email: str) -> User | None:
    """For operators at the command line, not for requests: emails are stored lower-case."""
    return User.objects.filter(email=email.strip().lower(), is_active=True).first()
