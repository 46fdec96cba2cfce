"""A quote's life through the services: its terms worked out by one pure function, edited
while a draft, sent by email, accepted (by staff for the customer, or by the customer
online with a typed signature) or declined — each step audited, every refusal harmless."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.factories import make_quote
from tests.helpers import unchanged
from tranche.accounts.business import business_profile
from tranche.accounts.models import Customer, User
from tranche.billing.services.acceptance import quote_accept
from tranche.core.errors import Conflict, Invalid, NotFound
from tranche.core.money import allocate
from tranche.notifications.models import OutboxEmail
from tranche.notifications.quotes import quote_send
from tranche.projects.models import Project
from tranche.projects.selectors import project_detail
from tranche.sales.models import Quote, QuoteStatus
from tranche.sales.services import (
    Acceptance,
    LineInput,
    ScheduleInput,
    quote_decline,
    quote_update,
)
from tranche.sales.terms import quote_terms

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
SIGNED = Acceptance(name="Alice Anders", agreed=True, ip="203.0.113.9")


def steps(*percentages: str) -> list[ScheduleInput]:
    return [ScheduleInput(f"Step {n}", True, Decimal(p)) for n, p in enumerate(percentages, 1)]


# --- the pure terms ------------------------------------------------------------------------


def test_terms_price_lines_and_allocate_the_schedule_like_allocate() -> None:
    terms = quote_terms(
        title="Loft",
        currency="usd",
        lines=[
            LineInput("Design", Decimal(1), Decimal("400.01")),
            LineInput("Hours", Decimal("12.5"), Decimal("48")),
        ],
        schedule=[*steps("30", "30"), ScheduleInput("Survey", False, None), *steps("40")],
    )
    assert terms.problems == []
    assert terms.currency == "USD"
    assert terms.line_totals == [Decimal("400.01"), Decimal("600.00")]
    assert terms.total == Decimal("1000.01")
    expected = allocate(Decimal("1000.01"), [Decimal(30), Decimal(30), Decimal(40)], "USD")
    assert terms.amounts == [expected[0], expected[1], None, expected[2]]
    assert terms.unscheduled == 0
    assert terms.complete


def test_terms_report_an_incomplete_schedule_in_the_sentence_people_read() -> None:
    terms = quote_terms(
        title="Loft",
        currency="USD",
        lines=[LineInput("Build", Decimal(1), Decimal(100))],
        schedule=steps("50", "40"),
    )
    assert terms.problems == []  # a draft may be saved like this …
    assert terms.unscheduled == Decimal("10.00")
    assert terms.incomplete_problem is not None  # … but not sent
    assert (
        terms.incomplete_problem.detail
        == "Billable percentages add up to 90 %; they must add up to 100 %."
    )


def test_terms_collect_every_problem_with_the_field_it_belongs_to() -> None:
    terms = quote_terms(
        title=" ",
        currency="USD",
        lines=[
            LineInput("", Decimal(1), Decimal(10)),
            None,  # unreadable: reported by the caller, keeps its number
            LineInput("Paint", Decimal(0), Decimal("1.001")),
        ],
        schedule=[ScheduleInput("A", True, None), *steps("60", "50")],
    )
    assert [(p.field, p.code) for p in terms.problems] == [
        ("title", "title_required"),
        ("line-1-description", "description_required"),
        ("line-3-quantity", "quantity_invalid"),
        ("line-3-unit_price", "amount_precision"),
        ("schedule-1-billing_percentage", "billing_percentage_required"),
        ("schedule", "schedule_over_100"),
    ]
    assert terms.amounts == [None, None, None]  # nothing is allocated past 100 %


# --- editing a draft -----------------------------------------------------------------------


def test_staff_edit_a_draft_quote(staff: User, admin: User, customer_a: Customer) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    quote_update(
        actor=staff,
        quote_id=quote.pk,
        customer_id=customer_a.pk,
        title="  Larger garden office ",
        currency="EUR",
        lines=[LineInput("Build", Decimal(2), Decimal("750.50"))],
        schedule=steps("50", "50"),
        now=NOW,
    )
    quote.refresh_from_db()
    assert quote.title == "Larger garden office"
    assert quote.currency == "EUR"
    assert quote.total == Decimal("1501.00")
    assert [line.description for line in quote.lines.all()] == ["Build"]
    assert [i.billing_percentage for i in quote.schedule.all()] == [50, 50]
    event = quote.events.get(kind="updated")
    assert (event.actor, event.at) == (staff, NOW)


@pytest.mark.parametrize("status", ["sent", "accepted", "declined"])
def test_only_a_draft_can_be_edited(admin: User, customer_a: Customer, status: str) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    Quote.objects.filter(pk=quote.pk).update(status=status)
    with unchanged(), pytest.raises(Conflict) as refused:
        quote_update(
            actor=admin,
            quote_id=quote.pk,
            customer_id=customer_a.pk,
            title="Changed",
            currency="USD",
            lines=[LineInput("Build", Decimal(1), Decimal(1))],
            schedule=steps("100"),
        )
    assert refused.value.code == "quote_not_draft"


def test_an_edit_breaking_a_rule_changes_nothing(admin: User, customer_a: Customer) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    with unchanged(), pytest.raises(Invalid) as refused:
        quote_update(
            actor=admin,
            quote_id=quote.pk,
            customer_id=customer_a.pk,
            title="Changed",
            currency="USD",
            lines=[LineInput("Build", Decimal(1), Decimal(1))],
            schedule=steps("70", "40"),
        )
    assert refused.value.code == "schedule_over_100"


# --- sending -------------------------------------------------------------------------------


def test_sending_marks_the_quote_sent_and_queues_the_email_with_the_portal_link(
    staff: User, admin: User, customer_a: Customer, settings: Any
) -> None:
    settings.BASE_URL = "https://portal.example"
    quote = make_quote(actor=admin, customer=customer_a)
    quote_send(actor=staff, quote_id=quote.pk, now=NOW)
    quote.refresh_from_db()
    assert (quote.status, quote.sent_at) == (QuoteStatus.SENT, NOW)
    email = OutboxEmail.objects.get()
    assert email.to == "accounts@acme.example"
    assert email.subject == f"Quote from {business_profile().name}: Garden office ($1,000.00)"
    assert f"https://portal.example/quotes/{quote.pk}/" in email.body_text
    event = quote.events.get(kind="sent")
    assert (event.actor, event.details) == (
        staff,
        {"to": "accounts@acme.example"},
    )


def test_a_sent_quote_can_be_sent_again(admin: User, customer_a: Customer) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    quote_send(actor=admin, quote_id=quote.pk)
    quote_send(actor=admin, quote_id=quote.pk)
    assert OutboxEmail.objects.count() == 2


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("no_email", "customer_email_missing"),
        ("incomplete", "schedule_not_100"),
        ("accepted", "quote_not_sendable"),
        ("declined", "quote_not_sendable"),
    ],
)
def test_sending_is_refused_when_it_cannot_reach_or_bind_the_customer(
    admin: User, customer_a: Customer, setup: str, code: str
) -> None:
    percentages = ("50", "40") if setup == "incomplete" else ("30", "30", "40")
    quote = make_quote(actor=admin, customer=customer_a, percentages=percentages)
    if setup == "no_email":
        Customer.objects.filter(pk=customer_a.pk).update(billing_email="")
    if setup == "accepted":
        quote_accept(actor=admin, quote_id=quote.pk)
    if setup == "declined":
        quote_decline(actor=admin, quote_id=quote.pk)
    with unchanged(), pytest.raises(Conflict) as refused:
        quote_send(actor=admin, quote_id=quote.pk)
    assert refused.value.code == code


# --- accepting and declining ---------------------------------------------------------------


def test_alice_accepts_her_sent_quote_online_and_the_project_is_made_as_for_staff(
    alice: User, admin: User, customer_a: Customer
) -> None:
    quote = make_quote(actor=admin, customer=customer_a, total="1000.01")
    quote_send(actor=admin, quote_id=quote.pk)
    project = quote_accept(actor=alice, quote_id=quote.pk, acceptance=SIGNED, now=NOW)

    quote.refresh_from_db()
    assert (quote.status, quote.accepted_at, quote.accepted_by) == ("accepted", NOW, alice)
    assert (quote.accepted_name, quote.accepted_ip) == ("Alice Anders", "203.0.113.9")
    assert project.origin_quote_id == quote.pk
    assert project.contract_total == Decimal("1000.01")
    detail = project_detail(project)
    assert [detail.amount_of(m).amount for m in detail.milestones] == [
        Decimal("300.00"),
        Decimal("300.00"),
        Decimal("400.01"),
    ]
    event = quote.events.get(kind="accepted")
    assert event.details == {"on_behalf": False, "name": "Alice Anders", "ip": "203.0.113.9"}


@pytest.mark.parametrize(
    ("acceptance", "code"),
    [
        (None, "signature_required"),
        (Acceptance(name="  ", agreed=True, ip=None), "signature_required"),
        (Acceptance(name="A", agreed=True, ip=None), "signature_required"),
        (Acceptance(name=" -. ", agreed=True, ip=None), "signature_required"),
        (Acceptance(name="Alice Anders", agreed=False, ip=None), "agreement_required"),
    ],
)
def test_a_customer_accepts_only_with_a_typed_name_and_the_tick(
    alice: User, admin: User, customer_a: Customer, acceptance: Acceptance | None, code: str
) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    quote_send(actor=admin, quote_id=quote.pk)
    with unchanged(), pytest.raises(Invalid) as refused:
        quote_accept(actor=alice, quote_id=quote.pk, acceptance=acceptance)
    assert refused.value.code == code


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_a_customer_cannot_answer_a_draft_or_another_customers_quote(
    alice: User, bob: User, admin: User, customer_a: Customer, answer: str
) -> None:
    draft = make_quote(actor=admin, customer=customer_a)
    sent = make_quote(actor=admin, customer=customer_a)
    quote_send(actor=admin, quote_id=sent.pk)

    def answer_as(who: User, quote: Quote) -> None:
        if answer == "accept":
            quote_accept(actor=who, quote_id=quote.pk, acceptance=SIGNED)
        else:
            quote_decline(actor=who, quote_id=quote.pk, reason="No")

    for who, quote in ((alice, draft), (bob, sent)):
        with unchanged(), pytest.raises(NotFound):
            answer_as(who, quote)
    assert not Project.objects.exists()


def test_alice_declines_with_a_comment(alice: User, admin: User, customer_a: Customer) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    quote_send(actor=admin, quote_id=quote.pk)
    quote_decline(actor=alice, quote_id=quote.pk, reason=" Too dear ", ip="203.0.113.9", now=NOW)
    quote.refresh_from_db()
    assert (quote.status, quote.declined_at, quote.decline_reason) == ("declined", NOW, "Too dear")
    event = quote.events.get(kind="declined")
    assert (event.actor, event.details) == (
        alice,
        {"reason": "Too dear", "on_behalf": False, "ip": "203.0.113.9"},
    )
    with unchanged(), pytest.raises(Conflict):
        quote_accept(actor=alice, quote_id=quote.pk, acceptance=SIGNED)


def test_staff_accept_a_sent_quote_on_the_customers_behalf(
    staff: User, admin: User, customer_a: Customer
) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    quote_send(actor=admin, quote_id=quote.pk)
    quote_accept(actor=staff, quote_id=quote.pk)
    quote.refresh_from_db()
    assert (quote.status, quote.accepted_by, quote.accepted_name) == ("accepted", staff, "")
    assert quote.events.get(kind="accepted").details == {"on_behalf": True}
