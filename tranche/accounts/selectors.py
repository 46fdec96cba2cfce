"""Reads for accounts, always scoped to the caller."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.models import Customer, Role, User
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


def customer_search(*, user: User, search: str = "") -> QuerySet[Customer]:
    """Customers matching `search` in their name, billing email or contact's name."""
    customers = customer_list(user=user)
    search = search.strip()
    if search:
        customers = customers.filter(
            Q(name__icontains=search)
            | Q(billing_email__icontains=search)
            | Q(contact_name__icontains=search)
        )
    return customers


def customer_users(*, user: User, customer: Customer) -> QuerySet[User]:
    """The customer's portal users, active first."""
    require_staff(user)
    return User.objects.filter(customer=customer).order_by("-is_active", "email")


def access_customer_user(user: User, customer_id: int, user_id: int) -> User:
    """A portal user of this customer, for staff; 404 for anyone else's id."""
    customer = access_customer(user, customer_id)
    found = (
        User.objects.filter(pk=user_id, customer=customer).first() if valid_id(user_id) else None
    )
    if found is None:
        raise NotFound(f"User {user_id} does not exist.", code="user_not_found")
    return found


def team_list(*, user: User) -> QuerySet[User]:
    """The business's own people (admins and staff), for admins: active first."""
    require_admin(user)
    return User.objects.filter(role__in=[Role.ADMIN, Role.STAFF]).order_by("-is_active", "email")


def access_team_user(user: User, user_id: int) -> User:
    found = team_list(user=user).filter(pk=user_id).first() if valid_id(user_id) else None
    if found is None:
        raise NotFound(f"User {user_id} does not exist.", code="user_not_found")
    return found
