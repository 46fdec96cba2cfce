"""Shared personas: `admin` and `staff` (the business), `alice` (a customer user of
customer A), `bob` (a customer user of customer B); `anonymous` sends no credentials."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.factories import CustomerFactory, UserFactory, make_project, make_quote
from tests.helpers import Api
from tranche.accounts.models import Customer, Role, User
from tranche.accounts.services import token_create
from tranche.projects.models import Project
from tranche.sales.models import Quote


@pytest.fixture
def customer_a() -> Customer:
    return CustomerFactory.create(name="Acme Builders", billing_email="accounts@acme.example")


@pytest.fixture
def customer_b() -> Customer:
    return CustomerFactory.create(name="Globex Studio", billing_email="ap@globex.example")


@pytest.fixture
def admin() -> User:
    return UserFactory.create(email="admin@tranche.example", role=Role.ADMIN)


@pytest.fixture
def staff() -> User:
    return UserFactory.create(email="staff@tranche.example", role=Role.STAFF)


@pytest.fixture
def alice(customer_a: Customer) -> User:
    return UserFactory.create(email="alice@acme.example", role=Role.CUSTOMER, customer=customer_a)


@pytest.fixture
def bob(customer_b: Customer) -> User:
    return UserFactory.create(email="bob@globex.example", role=Role.CUSTOMER, customer=customer_b)


@pytest.fixture
def as_(admin: User, staff: User, alice: User, bob: User) -> Callable[[str], Api]:
    """`as_("alice")` is an API client signed in as that persona."""
    users = {"admin": admin, "staff": staff, "alice": alice, "bob": bob}

    def make(persona: str) -> Api:
        return Api(None if persona == "anonymous" else token_create(user=users[persona]))

    return make


@pytest.fixture
def quote_a(admin: User, customer_a: Customer) -> Quote:
    return make_quote(actor=admin, customer=customer_a)


@pytest.fixture
def project_a(admin: User, customer_a: Customer) -> Project:
    return make_project(actor=admin, customer=customer_a, title="Kitchen for A")


@pytest.fixture
def project_b(admin: User, customer_b: Customer) -> Project:
    return make_project(actor=admin, customer=customer_b, title="Studio for B")
