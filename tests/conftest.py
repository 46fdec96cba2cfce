"""Shared personas: `admin` and `staff` (the business), `alice` (a customer user of
customer A), `bob` (a customer user of customer B); `anonymous` sends no credentials."""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.factories import CustomerFactory, UserFactory, make_project, make_quote
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.stripe_server import API_KEY as STRIPE_KEY
from tests.fakes.stripe_server import FakeStripe, FakeStripeServer
from tests.helpers import Api
from tranche.accounts.models import Customer, Role, User
from tranche.accounts.services import token_create
from tranche.projects.models import Project
from tranche.sales.models import Quote


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """schemathesis (4.32 on pytest 9) gives every operation's item, `test[GET /api/x]`,
    the test function's bare node id. pytest-xdist's loadgroup and loadfile schedulers
    key their work by node id, so all but one operation were silently never run, and
    reports named them all alike. Each such item gets its name, brackets and all, as id."""
    seen = Counter(item.nodeid for item in items)
    for item in items:
        if seen[item.nodeid] > 1 and "[" in item.name and not item.nodeid.endswith("]"):
            label = item.name.partition("[")[2].removesuffix("]")
            item._id = item._id.with_params(label)


@pytest.fixture(autouse=True)
def _flush_past_the_sent_invoice_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """A transactional test's database is emptied by DELETE on SQLite (TRUNCATE on
    PostgreSQL fires no row triggers), tables in any order: a sent invoice's tax lines
    would meet the guard that refuses deleting them (migration 0009). Before that flush
    (this fixture is torn down first), the lines go with the guard lifted for a moment."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("_django_db_helper")
    yield
    from django.db import connection, transaction

    if connection.vendor != "sqlite":
        return
    guard = importlib.import_module("tranche.billing.migrations.0011_sent_invoice_guard")
    recreate = [sql for sql in guard.SQLITE_FORWARD if "tax_line_delete" in sql]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS billing_invoice_tax_line_delete")
        cursor.execute("DELETE FROM billing_invoicetaxline")
        for sql in recreate:
            cursor.execute(sql)


_DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences"}


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request: pytest.FixtureRequest) -> None:
    """Every test starts with no attempt counted: the rate limits' counters live in the
    database cache table, which no test transaction or flush empties (it is no model's)."""
    if not (
        request.node.get_closest_marker("django_db") or _DB_FIXTURES & set(request.fixturenames)
    ):
        return
    request.getfixturevalue("_django_db_helper")
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()


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


@pytest.fixture
def fake_stripe(settings: Any) -> Iterator[FakeStripe]:
    """Stripe is the gateway, served by the fake on 127.0.0.1; the client times out fast."""
    with FakeStripeServer() as fake:
        settings.STRIPE_SECRET_KEY = STRIPE_KEY
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 1
        fake.hang_seconds = 2.5
        yield fake


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpServer]:
    """Email really leaves over SMTP to a local server."""
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 3
    yield server
    server.stop()


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks
