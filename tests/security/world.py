"""One rich world for the access matrix and the shape checks, built once per module
through the product's own services: customer A owns one of everything a route can name
(quotes in every state, a project with a sent and part-paid invoice, a draft, a cancelled
sent invoice, a credit note, change orders, a tax rate, a payment link …); customer B
owns a project of its own. Internal fields carry SENTINELS, unmistakable strings that
must never reach a customer: a leak is found by searching for them.

The personas ask with every credential they have at once (a session cookie and a bearer
token), so a refusal means every way in was refused."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import connection, transaction
from django.test import Client, override_settings
from django.utils import timezone

from tests.billing.change_order_helpers import line
from tests.billing.helpers import draft_for
from tests.factories import (
    PASSWORD,
    CustomerFactory,
    UserFactory,
    make_project,
    make_quote,
    password_hash,
)
from tranche.accounts.links import Purpose, set_password_url
from tranche.accounts.models import Customer, Role, TaxRate, User
from tranche.accounts.services import token_create, token_revoke
from tranche.accounts.tax_rates import tax_rate_create
from tranche.billing.models import (
    CreditNote,
    Invoice,
    InvoiceEvent,
    Payment,
    PaymentMethod,
    StripeEvent,
)
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.crediting import credit_note_issue
from tranche.billing.services.drafts import invoice_update_draft
from tranche.billing.services.payments import payment_record_manual, settle_intent_succeeded
from tranche.billing.services.sending import invoice_send
from tranche.notifications.change_orders import change_order_send
from tranche.notifications.models import OutboxEmail
from tranche.notifications.quotes import quote_send
from tranche.projects.models import ChangeOrder, Milestone, Project
from tranche.projects.services_change_orders import change_order_create
from tranche.sales.models import Quote

# --- sentinels: internal values a customer must never be shown --------------------------

SENTINELS = {
    "payment note": "SNTL-payment-note-chase-quietly",
    "manual reference": "SNTL-BANKREF-99172",
    "cancel reason": "SNTL-cancel-reason-scope-dispute",
    "provider intent id": "pi_SNTLintent0000000001",
    "provider payment id": "pi_SNTLcharge000000002",
    "stripe event id": "evt_SNTLwebhook00000003",
    "staff name": "Stella SNTLstaffname",
    "staff email": "stella.sntl@tranche.example",
    "admin name": "Adam SNTLadminname",
    "admin email": "adam.sntl@tranche.example",
    "draft invoice": "SNTL-draft-invoice-description",
    "unsent quote": "SNTL-unsent-quote-title",
    "draft change order": "SNTL-draft-change-order-title",
    "customer B name": "Globex SNTLcustomerB",
    "customer B email": "ap.sntl@globex.example",
    "customer B project": "SNTL-B-project-title",
    "customer B user": "bob.sntl@globex.example",
}


# Values nobody is shown, not even an admin: a PaymentIntent's client secret, as a Stripe
# event stored for the operations admin carries it.
SECRETS = {"client secret": "pi_SNTLintent0000000001_secret_SNTLclientsecret"}


@dataclass
class World:
    admin: User
    staff: User
    alice: User
    carol: User  # alice's colleague: the user the people routes act on
    bob: User
    former: User  # an admin whose account was deactivated after signing in
    customer_a: Customer
    customer_b: Customer
    tax_rate: TaxRate
    draft_quote: Quote
    sent_quote: Quote
    accepted_quote: Quote
    project: Project
    milestone_pending: Milestone
    sent: Invoice  # part paid: a manual payment with a note and a card payment
    draft: Invoice
    cancelled_sent: Invoice
    payment: Payment
    credit_note: CreditNote
    draft_change_order: ChangeOrder
    sent_change_order: ChangeOrder
    stripe_event: StripeEvent
    invoice_event: InvoiceEvent
    outbox_email: OutboxEmail
    project_b: Project
    invoice_b: Invoice
    milestone_b: Milestone
    payment_b: Payment
    reset_link: str  # carol's valid password-reset link
    tokens: dict[str, str] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)


def build_world() -> World:
    admin = UserFactory.create(
        email=SENTINELS["admin email"], full_name=SENTINELS["admin name"], role=Role.ADMIN
    )
    staff = UserFactory.create(
        email=SENTINELS["staff email"], full_name=SENTINELS["staff name"], role=Role.STAFF
    )
    former = UserFactory.create(email="former.admin@tranche.example", role=Role.ADMIN)
    customer_a = CustomerFactory.create(name="Acme Builders", billing_email="accounts@acme.example")
    customer_b = CustomerFactory.create(
        name=SENTINELS["customer B name"], billing_email=SENTINELS["customer B email"]
    )
    alice = UserFactory.create(
        email="alice@acme.example", full_name="Alice Acme", role=Role.CUSTOMER, customer=customer_a
    )
    carol = UserFactory.create(
        email="carol@acme.example", full_name="Carol Acme", role=Role.CUSTOMER, customer=customer_a
    )
    carol.set_password(PASSWORD)  # with the fast hasher: she is the one who signs in
    carol.save(update_fields=["password"])
    bob = UserFactory.create(
        email=SENTINELS["customer B user"], role=Role.CUSTOMER, customer=customer_b
    )
    tax_rate = tax_rate_create(actor=admin, name="VAT 20", percentage="20")

    draft_quote = make_quote(actor=staff, customer=customer_a, title=SENTINELS["unsent quote"])
    sent_quote = quote_send(
        actor=staff,
        quote_id=make_quote(actor=staff, customer=customer_a, title="Porch for A").pk,
    )
    project = make_project(
        actor=admin, customer=customer_a, title="Loft for A", percentages=("10", "20", "30", "40")
    )
    accepted_quote = project.origin_quote
    assert accepted_quote is not None

    # Milestone 1: sent, part paid by hand (with internal note and reference) and by card.
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, staff).pk)
    Invoice.objects.filter(pk=sent.pk).update(provider_reference=SENTINELS["provider intent id"])
    payment_record_manual(
        actor=admin,
        invoice_id=sent.pk,
        amount=Decimal("30.00"),
        method=PaymentMethod.BANK_TRANSFER,
        received_on=timezone.localdate(),
        reference=SENTINELS["manual reference"],
        note=SENTINELS["payment note"],
    )
    settle_intent_succeeded(
        intent_id=SENTINELS["provider intent id"],
        amount_received=Decimal("20.00"),
        currency="USD",
        method=PaymentMethod.SANDBOX,
        source=f"webhook {SENTINELS['stripe event id']}",
    )
    card = Payment.objects.get(invoice=sent, method=PaymentMethod.SANDBOX)
    Payment.objects.filter(pk=card.pk).update(provider_reference=SENTINELS["provider payment id"])
    credit_note = credit_note_issue(
        actor=admin, invoice_id=sent.pk, amount=Decimal("5.00"), reason="Goodwill discount"
    )
    # Milestone 2: a draft waiting for review, described in words meant for the business.
    draft = draft_for(project, 2, staff)
    invoice_update_draft(actor=admin, invoice_id=draft.pk, description=SENTINELS["draft invoice"])
    # Milestone 4: sent, then cancelled for a reason the customer is not told.
    cancelled_sent = invoice_send(actor=admin, invoice_id=draft_for(project, 4, staff).pk)
    invoice_cancel(actor=admin, invoice_id=cancelled_sent.pk, reason=SENTINELS["cancel reason"])
    milestone_pending = project.milestones.get(position=3)

    draft_change_order = change_order_create(
        actor=staff,
        project_id=project.pk,
        title=SENTINELS["draft change order"],
        lines=[line("Build", "1000.00"), line("Skylight", "250.00")],
    )
    sent_change_order = change_order_send(
        actor=staff,
        change_order_id=change_order_create(
            actor=staff,
            project_id=project.pk,
            title="Extra window",
            lines=[line("Build", "1000.00"), line("Window", "120.00")],
        ).pk,
    )
    stripe_event = StripeEvent.objects.create(
        event_id=SENTINELS["stripe event id"],
        event_type="payment_intent.succeeded",
        payload={
            "id": SENTINELS["stripe event id"],
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": SENTINELS["provider intent id"],
                    "object": "payment_intent",
                    "client_secret": SECRETS["client secret"],
                }
            },
        },
        received_at=timezone.now(),
        processed_at=timezone.now(),
        outcome="settled",
    )

    project_b = make_project(
        actor=admin, customer=customer_b, title=SENTINELS["customer B project"]
    )
    invoice_b = invoice_send(actor=admin, invoice_id=draft_for(project_b, 1, staff).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=invoice_b.pk,
        amount=Decimal("10.00"),
        method=PaymentMethod.BANK_TRANSFER,
        received_on=timezone.localdate(),
    )

    for obj in (sent, draft, cancelled_sent, sent_change_order, sent_quote):
        obj.refresh_from_db()
    assert sent.pay_token
    assert cancelled_sent.number
    assert draft.number is None

    world = World(
        admin=admin,
        staff=staff,
        alice=alice,
        carol=carol,
        bob=bob,
        former=former,
        customer_a=customer_a,
        customer_b=customer_b,
        tax_rate=tax_rate,
        draft_quote=draft_quote,
        sent_quote=sent_quote,
        accepted_quote=accepted_quote,
        project=project,
        milestone_pending=milestone_pending,
        sent=sent,
        draft=draft,
        cancelled_sent=cancelled_sent,
        payment=Payment.objects.get(invoice=sent, method=PaymentMethod.BANK_TRANSFER),
        credit_note=credit_note,
        draft_change_order=draft_change_order,
        sent_change_order=sent_change_order,
        stripe_event=stripe_event,
        invoice_event=sent.events.order_by("pk").first() or InvoiceEvent(),
        outbox_email=OutboxEmail.objects.filter(to=customer_a.billing_email).order_by("pk")[0],
        project_b=project_b,
        invoice_b=invoice_b,
        milestone_b=project_b.milestones.get(position=2),
        payment_b=Payment.objects.get(invoice=invoice_b),
        reset_link=set_password_url(carol, purpose=Purpose.PASSWORD_RESET, now=timezone.now()),
    )
    _sign_in_personas(world)
    return world


def _client(user: User | None, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = Client(headers=headers)
    if user is not None:
        client.force_login(user)
    return client


def _sign_in_personas(world: World) -> None:
    """Every persona with every credential it holds: a session and a bearer token."""
    for name in ("alice", "bob", "staff", "admin"):
        user = getattr(world, name)
        world.tokens[name] = token_create(user=user)
        world.clients[name] = _client(user, world.tokens[name])
    world.clients["anonymous"] = Client()
    # Signed in and holding a token, then deactivated by a bare column write: the
    # session and the token must both stop working whatever path turned the flag off.
    former_token = token_create(user=world.former)
    world.clients["deactivated"] = _client(world.former, former_token)
    # Both worked, each on its own, before: a refusal after is the deactivation's doing.
    _assert_signed_in(_client(world.former, None), _client(None, former_token))
    User.objects.filter(pk=world.former.pk).update(is_active=False)
    # An admin's token, revoked: worth nothing (no session goes with it).
    revoked = token_create(user=world.admin)
    world.clients["revoked"] = _client(None, revoked)
    _assert_signed_in(None, world.clients["revoked"])
    token_revoke(token=revoked)


def _assert_signed_in(session: Client | None, bearer: Client) -> None:
    if session is not None:
        assert session.get("/").status_code == 200
    assert bearer.get("/api/projects").status_code == 200


@contextmanager
def world_kept(django_db_blocker: Any) -> Iterator[World]:
    """The world, built inside one transaction that is rolled back when the module ends.
    Marked like a TestCase's own block so the services' durable blocks run inside it.

    Passwords are hashed with a fast hasher meanwhile: the sign-in routes are asked
    dozens of times, and Argon2 is slow on purpose. Django's own log of each refused
    request (hundreds of them, by design) is silenced; the outcomes are what is checked."""
    password_hash()  # the factories' shared hash stays Argon2 for every other test
    fast = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), fast, _quiet(), _rolled_back():
        yield build_world()


@contextmanager
def _quiet() -> Iterator[None]:
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@contextmanager
def isolated() -> Iterator[None]:
    """Run one request in a savepoint that is rolled back: every request meets the same
    world, and what an allowed write did is undone before the next."""
    with _rolled_back():
        yield


@contextmanager
def _rolled_back() -> Iterator[None]:
    """An atomic block always rolled back, marked as a TestCase's own so that a durable
    block of the code under test may open inside it (as in any Django TestCase)."""
    atomic = transaction.atomic()
    atomic.__enter__()
    setattr(atomic, "_from_testcase", True)  # noqa: B010
    try:
        yield
    finally:
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)


# --- proof that nothing changed ------------------------------------------------------------

# Written on every authenticated request, by design, not by the request's action.
_VOLATILE_COLUMNS = {"accounts_apitoken": {"last_used_at"}, "accounts_user": {"last_login"}}


def watched_tables() -> list[tuple[str, list[str], str]]:
    """(table, columns, primary key) of every model of Tranche's apps, the task queue and
    the outbox and audit tables among them."""
    tables = []
    for model in apps.get_models():
        if not (
            model.__module__.startswith("tranche.")
            or model._meta.app_label in ("django_tasks_database", "admin")
        ):
            continue
        table = model._meta.db_table
        skip = _VOLATILE_COLUMNS.get(table, set())
        columns = [str(f.column) for f in model._meta.concrete_fields if f.column not in skip]
        tables.append((table, columns, str(model._meta.pk.column)))
    return sorted(tables)


def db_digest(tables: list[tuple[str, list[str], str]]) -> dict[str, str]:
    """A digest of every row of every watched table, one per table, fast enough to take
    after every refused write (on PostgreSQL in one round trip, the rows hashed there)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            parts = [
                f"SELECT %s, md5(coalesce(string_agg(ROW({', '.join(map(quote, cols))})::text, "
                f"'|' ORDER BY {quote(pk)}), '')) FROM {quote(table)}"
                for table, cols, pk in tables
            ]
            cursor.execute(" UNION ALL ".join(parts), [table for table, _, _ in tables])
            return dict(cursor.fetchall())
        digests = {}
        for table, columns, pk in tables:
            cols = ", ".join(quote(c) for c in columns)
            cursor.execute(f"SELECT {cols} FROM {quote(table)} ORDER BY {quote(pk)}")
            digests[table] = hashlib.sha256(repr(cursor.fetchall()).encode()).hexdigest()
        return digests


def later(days: int) -> str:
    return (timezone.localdate() + timedelta(days=days)).isoformat()
