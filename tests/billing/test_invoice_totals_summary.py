"""The financials totals come from a summary the database keeps (InvoiceTotals, migration
0012) and always equal a full recount from the invoices (issue 11).

After every kind of change an invoice goes through, by the real services (and by bulk
writes and raw SQL, which no service guards), in USD, JPY and KWD: each summary row is
exactly what its invoices add up to, and the totals an admin and a customer user are
shown, with and without a status or customer filter, equal `recount`."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.billing.change_order_helpers import change_order, line
from tests.billing.helpers import recounted_rows, summary_rows, triggers_dropped
from tests.factories import CustomerFactory, UserFactory, make_project
from tests.fakes.stripe_server import FakeStripe
from tranche.accounts.models import Customer, Role, User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.selectors import InvoiceFilter, currency_totals, invoice_page, recount
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.change_orders import change_order_approve
from tranche.billing.services.crediting import credit_note_issue, refund_record_manual
from tranche.billing.services.drafts import (
    invoice_update_draft,
    milestone_complete,
    milestone_reopen,
)
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.retainage import retainage_release
from tranche.billing.services.sending import invoice_send
from tranche.core.money import ZERO, round_money, to_minor_units
from tranche.projects.models import Project
from tranche.projects.services import project_set_retainage
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db

# Totals that do not divide evenly, so every currency's precision is exercised.
TOTALS = {"USD": "1000.01", "JPY": "100001", "KWD": "1000.007"}
CURRENCIES = list(TOTALS)


def filters(customers: list[Customer]) -> list[InvoiceFilter]:
    wanted = [InvoiceFilter()]
    wanted += [InvoiceFilter(status=s) for s in InvoiceStatus.values]
    wanted += [InvoiceFilter(customer_id=c.pk) for c in customers]
    wanted += [InvoiceFilter(status=s, customer_id=customers[0].pk) for s in InvoiceStatus.values]
    return wanted


def assert_exact(*users: User) -> None:
    """The summary is what the invoices add up to, key by key, and every persona's
    totals, whatever the status and customer filter, equal the recount."""
    assert summary_rows() == recounted_rows()
    customers = list(Customer.objects.order_by("pk"))
    for user in users:
        for wanted in filters(customers):
            assert currency_totals(user=user, wanted=wanted) == recount(user=user, wanted=wanted), (
                user.email,
                wanted,
            )


@pytest.fixture
def check(admin: User, alice: User, bob: User) -> Callable[[], None]:
    return lambda: assert_exact(admin, alice, bob)


def part(amount: Decimal, currency: str, share: int = 3) -> Decimal:
    return round_money(amount / share, currency)


def pay(invoice: Invoice, admin: User, amount: Decimal) -> Invoice:
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=amount,
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    invoice.refresh_from_db()
    return invoice


def complete(project: Project, position: int, admin: User) -> Invoice:
    milestone = project.milestones.get(position=position)
    done = milestone_complete(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
    assert done.invoice is not None
    return done.invoice


def project_in(currency: str, admin: User, customer: Customer, title: str = "Boathouse") -> Project:
    return make_project(
        actor=admin, customer=customer, total=TOTALS[currency], currency=currency, title=title
    )


# --- the life of invoices, step by step -----------------------------------------------


@pytest.mark.parametrize("currency", CURRENCIES)
def test_drafts_made_edited_reopened_and_deleted_keep_the_summary_exact(
    currency: str,
    admin: User,
    customer_a: Customer,
    customer_b: Customer,
    check: Callable[[], None],
) -> None:
    check()  # nothing yet: no totals at all
    project = project_in(currency, admin, customer_a)
    other = project_in("USD", admin, customer_b, title="Studio")
    first = complete(project, 1, admin)
    complete(other, 1, admin)
    check()

    invoice_update_draft(actor=admin, invoice_id=first.pk, amount=Decimal("123"))
    check()

    milestone_reopen(
        actor=admin, project_id=project.pk, milestone_id=project.milestones.get(position=1).pk
    )
    assert Invoice.objects.get(pk=first.pk).status == InvoiceStatus.CANCELLED
    check()

    second = complete(project, 2, admin)
    # No service deletes an invoice; the database keeps the summary whatever does.
    Invoice.objects.filter(pk=second.pk).delete()
    check()


@pytest.mark.parametrize("currency", CURRENCIES)
def test_sending_paying_refunding_crediting_and_cancelling_keep_the_summary_exact(
    currency: str,
    admin: User,
    customer_a: Customer,
    customer_b: Customer,
    check: Callable[[], None],
) -> None:
    project = project_in(currency, admin, customer_a)
    project_in(currency, admin, customer_b)
    first, second, third = (complete(project, n, admin) for n in (1, 2, 3))

    first = invoice_send(actor=admin, invoice_id=first.pk)
    check()

    first = pay(first, admin, part(first.amount, currency))
    assert first.status == InvoiceStatus.PARTIALLY_PAID
    check()

    first = pay(first, admin, first.amount_due)
    assert first.status == InvoiceStatus.PAID
    check()

    refund_record_manual(
        actor=admin,
        invoice_id=first.pk,
        amount=part(first.amount, currency, 10),
        method="bank_transfer",
        paid_on=timezone.localdate(),
        reason="Paid for a day not worked",
        credit_invoice=False,
    )
    assert Invoice.objects.get(pk=first.pk).status == InvoiceStatus.PARTIALLY_PAID
    check()

    second = invoice_send(actor=admin, invoice_id=second.pk)
    credit_note_issue(
        actor=admin,
        invoice_id=second.pk,
        amount=part(second.amount, currency, 4),
        reason="One room not painted",
    )
    check()

    second = pay(second, admin, part(second.amount, currency, 5))
    refund_record_manual(
        actor=admin,
        invoice_id=second.pk,
        amount=part(second.amount, currency, 10),
        method="bank_transfer",
        paid_on=timezone.localdate(),
        reason="Goodwill",
        credit_invoice=True,
    )
    check()

    third = invoice_send(actor=admin, invoice_id=third.pk)
    invoice_cancel(actor=admin, invoice_id=third.pk, reason="Sent by mistake")
    assert Invoice.objects.get(pk=third.pk).status == InvoiceStatus.CANCELLED
    check()


@pytest.mark.parametrize("currency", CURRENCIES)
def test_the_periodic_pass_marking_overdue_keeps_the_summary_exact(
    currency: str, admin: User, customer_a: Customer, check: Callable[[], None]
) -> None:
    project = project_in(currency, admin, customer_a)
    long_ago = timezone.now() - timedelta(days=60)
    late = invoice_send(actor=admin, invoice_id=complete(project, 1, admin).pk, now=long_ago)
    pay(late, admin, part(late.amount, currency))
    invoice_send(actor=admin, invoice_id=complete(project, 2, admin).pk, now=long_ago)
    check()

    invoices_tick()
    assert set(project.invoices.values_list("status", flat=True)) == {InvoiceStatus.OVERDUE}
    check()


@pytest.mark.parametrize("currency", CURRENCIES)
def test_change_orders_retainage_and_deposits_keep_the_summary_exact(
    currency: str,
    admin: User,
    customer_a: Customer,
    customer_b: Customer,
    check: Callable[[], None],
) -> None:
    project = make_project(
        actor=admin,
        customer=customer_a,
        total=TOTALS[currency],
        currency=currency,
        percentages=("25", "25", "25", "25"),
    )
    project_set_retainage(actor=admin, project_id=project.pk, percentage=Decimal("5"))
    for position in (1, 2):
        invoice_send(actor=admin, invoice_id=complete(project, position, admin).pk)
    check()

    complete(project, 3, admin)
    bigger = {"USD": "2000.00", "JPY": "200000", "KWD": "2000.000"}[currency]
    order = change_order(project, admin, line("Build", bigger))
    change_order_approve(actor=admin, change_order_id=order.pk)
    check()

    milestone_reopen(
        actor=admin, project_id=project.pk, milestone_id=project.milestones.get(position=3).pk
    )
    # Below what was invoiced: credit notes on the sent invoices, in one transaction.
    smaller = {"USD": "200.00", "JPY": "20000", "KWD": "200.000"}[currency]
    order = change_order(project, admin, line("Build", smaller))
    change_order_approve(actor=admin, change_order_id=order.pk, issue_credit_note=True)
    check()

    retainage_release(actor=admin, project_id=project.pk)
    check()

    quote = quote_create(
        actor=admin,
        customer_id=customer_b.pk,
        title="Kitchen",
        currency=currency,
        lines=[LineInput("Build", Decimal(1), Decimal(TOTALS[currency]))],
        schedule=[
            ScheduleInput("Deposit", True, Decimal(30), True),
            ScheduleInput("Handover", True, Decimal(70), False),
        ],
    )
    quote_accept(actor=admin, quote_id=quote.pk)  # its deposit invoice, made at once
    check()


@pytest.fixture
def webhook_secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]


def deliver(payload: str) -> dict[str, Any]:
    response = Client().post(
        "/api/webhooks/stripe",
        payload,
        content_type="application/json",
        headers={"Stripe-Signature": events.sign(payload)},
    )
    assert response.status_code == 200, response.content
    return dict(response.json())


@pytest.mark.parametrize("currency", CURRENCIES)
def test_card_payments_and_stripe_refunds_keep_the_summary_exact(
    currency: str,
    admin: User,
    customer_a: Customer,
    fake_stripe: FakeStripe,
    webhook_secret: None,
    check: Callable[[], None],
) -> None:
    project = project_in(currency, admin, customer_a)
    invoice = invoice_send(actor=admin, invoice_id=complete(project, 1, admin).pk)
    intent = invoice.provider_reference
    assert intent
    minor = to_minor_units(invoice.amount, currency)
    code = currency.lower()
    # A transfer arrives for a third, then the card is charged the whole amount anyway.
    pay(invoice, admin, part(invoice.amount, currency))
    check()

    assert deliver(events.intent_succeeded(intent, minor, currency=code))["outcome"] == "settled"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.credit_owed > 0  # overpaid
    check()

    deliver(
        events.charge_refunded(intent, to_minor_units(invoice.credit_owed, currency), currency=code)
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.credit_owed) == (InvoiceStatus.PAID, ZERO)
    check()

    deliver(events.charge_refunded(intent, minor, currency=code))  # all of the card's money
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PARTIALLY_PAID
    check()


def test_bulk_updates_and_raw_sql_keep_the_summary_exact(
    admin: User, customer_a: Customer, customer_b: Customer, check: Callable[[], None]
) -> None:
    usd = project_in("USD", admin, customer_a)
    kwd = project_in("KWD", admin, customer_b)
    for project in (usd, kwd):
        for position in (1, 2):
            complete(project, position, admin)
    check()

    # One statement changing several invoices of two customers at once.
    Invoice.objects.filter(status=InvoiceStatus.DRAFT).update(amount=Decimal("10.005"))
    check()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_invoice SET customer_id = %s WHERE project_id = %s",
            [customer_a.pk, kwd.pk],
        )
    check()
    # A write that touches no column the totals read leaves the summary as it was.
    before = summary_rows()
    Invoice.objects.update(description="Renamed")
    assert summary_rows() == before
    check()

    Invoice.objects.filter(project=usd).delete()
    check()


def test_many_invoices_inserted_in_one_statement_are_counted_once_each(
    admin: User, customer_a: Customer, check: Callable[[], None]
) -> None:
    """What the benchmark's generator does: bulk_create through the model."""
    project = project_in("KWD", admin, customer_a)
    template = complete(project, 1, admin)
    now = timezone.now()
    copies = [
        Invoice(
            project=project,
            customer=customer_a,
            currency="KWD",
            amount=Decimal("0.001") * n,
            amount_paid=Decimal("0.001") * (n % 4),
            description=f"Copy {n}",
            issue_date=template.issue_date,
            due_date=template.due_date,
            customer_name=template.customer_name,
            created_at=now,
            updated_at=now,
        )
        for n in range(1, 201)
    ]
    Invoice.objects.bulk_create(copies)
    assert summary_rows()[(customer_a.pk, "KWD", "draft", False)][0] == 201
    check()


# --- reads ----------------------------------------------------------------------------


def test_the_totals_of_the_first_page_come_from_the_summary_not_from_the_invoices(
    admin: User, alice: User, customer_a: Customer
) -> None:
    project = project_in("USD", admin, customer_a)
    invoice_send(actor=admin, invoice_id=complete(project, 1, admin).pk)
    for user, wanted in (
        (admin, InvoiceFilter()),
        (admin, InvoiceFilter(status="pending", customer_id=customer_a.pk)),
        (alice, InvoiceFilter()),
    ):
        with CaptureQueriesContext(connection) as queries:
            totals = currency_totals(user=user, wanted=wanted)
        assert [q["sql"] for q in queries.captured_queries if 'billing_invoice"' in q["sql"]] == []
        assert len(queries.captured_queries) == 1
        assert [t.outstanding_amount for t in totals] == [Decimal("300.00")]


def test_a_project_search_or_date_filter_adds_up_the_matching_invoices(
    admin: User, customer_a: Customer
) -> None:
    project = project_in("USD", admin, customer_a)
    complete(project, 1, admin)
    other = project_in("USD", admin, customer_a, title="Shed")
    complete(other, 1, admin)
    for wanted in (
        InvoiceFilter(project_id=project.pk),
        InvoiceFilter(search="Boathouse"),
        InvoiceFilter(issued_from=timezone.localdate()),
    ):
        assert currency_totals(user=admin, wanted=wanted) == recount(user=admin, wanted=wanted)
    [by_project] = currency_totals(user=admin, wanted=InvoiceFilter(project_id=project.pk))
    assert (by_project.draft_count, by_project.draft_amount) == (1, Decimal("300.00"))


def test_a_customer_user_is_never_counted_a_draft_nor_another_customers_invoice(
    admin: User, alice: User, customer_a: Customer, customer_b: Customer
) -> None:
    mine = project_in("USD", admin, customer_a)
    theirs = project_in("USD", admin, customer_b)
    invoice_send(actor=admin, invoice_id=complete(mine, 1, admin).pk)
    complete(mine, 2, admin)  # a draft: the business's own
    invoice_send(actor=admin, invoice_id=complete(theirs, 1, admin).pk)
    cancelled_draft = complete(theirs, 2, admin)
    invoice_cancel(actor=admin, invoice_id=cancelled_draft.pk, reason="Not needed")

    [totals] = currency_totals(user=alice, wanted=InvoiceFilter())
    assert (totals.draft_count, totals.draft_amount) == (0, ZERO)
    assert totals.outstanding_amount == Decimal("300.00")
    # Asking for another customer's invoices finds none of them.
    assert currency_totals(user=alice, wanted=InvoiceFilter(customer_id=customer_b.pk)) == []
    [staff_view] = invoice_page(user=admin).totals
    assert (staff_view.draft_count, staff_view.outstanding_amount) == (1, Decimal("600.00"))


def test_an_unknown_status_is_refused_as_before(admin: User) -> None:
    from tranche.core.errors import Invalid

    with pytest.raises(Invalid) as refused:
        currency_totals(user=admin, wanted=InvoiceFilter(status="lost"))
    assert refused.value.code == "status_invalid"


# --- the triggers are what keeps it exact ----------------------------------------------


def totals_triggers_dropped() -> AbstractContextManager[None]:
    """The summary's triggers dropped inside the block, in the test's own transaction."""
    return triggers_dropped("0012_invoice_totals")


def test_without_its_triggers_the_summary_falls_behind_and_the_check_says_so(
    admin: User, alice: User, bob: User, customer_a: Customer
) -> None:
    """Proof that the checks above would catch a missing trigger."""
    project = project_in("USD", admin, customer_a)
    draft = complete(project, 1, admin)
    assert_exact(admin, alice, bob)
    with totals_triggers_dropped():
        invoice_send(actor=admin, invoice_id=draft.pk)
    with pytest.raises(AssertionError):
        assert_exact(admin, alice, bob)


def test_the_migration_fills_the_summary_from_the_invoices_there_are(
    admin: User, alice: User, bob: User, customer_a: Customer
) -> None:
    project = project_in("JPY", admin, customer_a)
    pay(invoice_send(actor=admin, invoice_id=complete(project, 1, admin).pk), admin, Decimal(5))
    complete(project, 2, admin)
    migration = importlib.import_module("tranche.billing.migrations.0012_invoice_totals")
    recount_sql = {"sqlite": migration.SQLITE_RECOUNT, "postgresql": migration.PG_RECOUNT}
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_invoicetotals")
        assert summary_rows() == {}
        for sql in recount_sql[connection.vendor]:
            cursor.execute(sql)
    assert_exact(admin, alice, bob)


def test_personas_of_a_second_customer_user_see_the_same_totals_as_alice(
    admin: User, alice: User, customer_a: Customer
) -> None:
    """Two users of one customer share its totals (the scope is the customer)."""
    colleague = UserFactory.create(role=Role.CUSTOMER, customer=customer_a)
    project = project_in("USD", admin, customer_a)
    invoice_send(actor=admin, invoice_id=complete(project, 1, admin).pk)
    CustomerFactory.create()  # a customer with no invoice adds no row and no currency
    assert currency_totals(user=colleague, wanted=InvoiceFilter()) == currency_totals(
        user=alice, wanted=InvoiceFilter()
    )


# --- concurrent writers (PostgreSQL) ---------------------------------------------------


def in_one_transaction(
    statements: list[tuple[str, list[Any]]], *, start: float, pause: float
) -> BaseException | None:
    """On a connection of its own: `start` seconds from now, `statements` in one
    transaction, `pause` seconds apart. The error it met, if any."""
    time.sleep(start)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for n, (sql, params) in enumerate(statements):
                time.sleep(pause if n else 0)
                cursor.execute(sql, params)
    except BaseException as exc:
        return exc
    finally:
        connection.close()
    return None


@pytest.mark.django_db(transaction=True)
def test_two_transactions_changing_a_customers_invoices_in_opposite_orders_do_not_deadlock(
    admin: User, alice: User, bob: User, customer_a: Customer
) -> None:
    """Each moves two invoices of one customer, one a draft and one sent (two summary
    rows), in the opposite order of the other: with only the summary rows' own locks,
    each would hold the row the other waits for, and PostgreSQL would abort one for a
    deadlock. The trigger's lock per customer makes the second wait for the first."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: nothing interleaves")
    project = make_project(
        actor=admin, customer=customer_a, percentages=("25", "25", "25", "25"), title="Barn"
    )
    draft_1, draft_2 = complete(project, 1, admin), complete(project, 2, admin)
    sent_1, sent_2 = (
        invoice_send(actor=admin, invoice_id=complete(project, n, admin).pk) for n in (3, 4)
    )
    draft_row = "UPDATE billing_invoice SET amount = amount + 1 WHERE id = %s"
    sent_row = "UPDATE billing_invoice SET amount_paid = amount_paid + 1 WHERE id = %s"
    plans = [
        ([(draft_row, [draft_1.pk]), (sent_row, [sent_1.pk])], 0.0),
        ([(sent_row, [sent_2.pk]), (draft_row, [draft_2.pk])], 0.2),
    ]
    errors: list[BaseException | None] = [None, None]

    def run(n: int) -> None:
        errors[n] = in_one_transaction(plans[n][0], start=plans[n][1], pause=0.6)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [None, None]
    assert_exact(admin, alice, bob)
