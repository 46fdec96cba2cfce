"""Demo data for `tranche demo` and `make run`: made through the same services as real
data, and safe to load again (nothing is created twice)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from tranche.accounts.models import Customer, Role, User
from tranche.accounts.services import customer_create, user_create
from tranche.projects.services import quote_accept
from tranche.sales.models import Quote
from tranche.sales.services import LineInput, ScheduleInput, quote_create


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str


ADMIN = DemoLogin("admin@example.com", "demo-admin-pass", Role.ADMIN)
STAFF = DemoLogin("staff@example.com", "demo-staff-pass", Role.STAFF)
CUSTOMER = DemoLogin("client@acme.example", "demo-client-pass", Role.CUSTOMER)
LOGINS = (ADMIN, STAFF, CUSTOMER)


def _customer(actor: User, name: str, **fields: str) -> Customer:
    existing = Customer.objects.filter(name=name).first()
    return existing or customer_create(actor=actor, name=name, **fields)  # type: ignore[arg-type]


def _user(login: DemoLogin, customer: Customer | None = None) -> User:
    existing = User.objects.filter(email=login.email).first()
    return existing or user_create(
        email=login.email,
        password=login.password,
        role=login.role,
        customer_id=customer.pk if customer else None,
    )


@transaction.atomic
def load_demo() -> tuple[DemoLogin, ...]:
    admin = _user(ADMIN)
    _user(STAFF)
    acme = _customer(
        admin,
        "Acme Builders",
        billing_email="accounts@acme.example",
        contact_name="Ada Acme",
        address="1 Main Street\nSpringfield",
    )
    _customer(
        admin, "Globex Studio", billing_email="ap@globex.example", contact_name="Hank Scorpio"
    )
    _user(CUSTOMER, acme)
    if not Quote.objects.filter(customer=acme, title="Kitchen renovation").exists():
        quote = quote_create(
            actor=admin,
            customer_id=acme.pk,
            title="Kitchen renovation",
            currency="USD",
            lines=[
                LineInput("Design and permits", Decimal("1"), Decimal("2400.00")),
                LineInput("Cabinets and installation", Decimal("1"), Decimal("7600.00")),
                LineInput("Electrical work (hours)", Decimal("24"), Decimal("83.34")),
            ],
            schedule=[
                ScheduleInput("Deposit", True, Decimal("30")),
                ScheduleInput("Site survey", False, None),
                ScheduleInput("Cabinets installed", True, Decimal("30")),
                ScheduleInput("Handover", True, Decimal("40")),
            ],
        )
        quote_accept(actor=admin, quote_id=quote.pk)
    return LOGINS
