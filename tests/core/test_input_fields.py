"""Flaw 18: the shared input field types refuse what only looks like a value: digits of
other scripts and `_` separators in numbers, titles that draw nothing, email addresses
without a domain name. JSON numbers (parsed as Decimal) and JSON strings both go through
the same types."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.helpers import Api, unchanged
from tranche.accounts.models import Customer, User
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project
from tranche.sales.models import Quote

pytestmark = pytest.mark.django_db

ARABIC_INDIC_100 = "\u0661\u0660\u0660"  # what Decimal() and int() read as 100
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff \t"


def quote(customer: Customer, **line: Any) -> dict[str, Any]:
    return {
        "customer_id": customer.pk,
        "title": "Loft conversion",
        "currency": "USD",
        "lines": [{"description": "Design", "quantity": "1", "unit_price": "1200.00", **line}],
    }


NOT_PLAIN_NUMBERS = [
    ARABIC_INDIC_100,
    "\u06f1\u06f0\u06f0",
    "\u0967\u0966\u0966",
    "1_000",
    "1e3",
    " 100",
    "100 ",
    "+100",
    "0x10",
    "1,000",
]


@pytest.mark.parametrize("price", NOT_PLAIN_NUMBERS)
def test_staff_cannot_price_a_quote_line_with_anything_but_ascii_digits(
    as_: Callable[[str], Api], customer_a: Customer, price: str
) -> None:
    api = as_("staff")
    with unchanged():
        response = api.post("/api/quotes", quote(customer_a, unit_price=price))
    assert (response.status, response.body["code"]) == (422, "validation_error")
    assert "lines.0.unit_price" in response.body["detail"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("quantity", "\u0661"), ("quantity", "1_0"), ("quantity", True), ("unit_price", False)],
)
def test_quantities_and_prices_must_be_plain_numbers(
    as_: Callable[[str], Api], customer_a: Customer, field: str, value: Any
) -> None:
    api = as_("staff")
    with unchanged():
        response = api.post("/api/quotes", quote(customer_a, **{field: value}))
    assert (response.status, response.body["code"]) == (422, "validation_error")


@pytest.mark.parametrize("customer_id", ["\u0661", "1_0", True])
def test_ids_must_be_plain_whole_numbers(
    as_: Callable[[str], Api], customer_a: Customer, customer_id: Any
) -> None:
    api = as_("staff")
    body = {**quote(customer_a), "customer_id": customer_id}
    with unchanged():
        response = api.post("/api/quotes", body)
    assert (response.status, response.body["code"]) == (422, "validation_error")


def test_json_numbers_and_plain_strings_are_still_accepted(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    raw = (
        f'{{"customer_id": {customer_a.pk}, "title": "Loft", "currency": "USD", "lines": ['
        '{"description": "Design", "quantity": 2, "unit_price": 1200.5},'
        '{"description": "Survey", "quantity": "1.5", "unit_price": "-0"},'
        '{"description": "Skip", "quantity": "1", "unit_price": "99.99"}]}'
    )
    response = as_("staff").post("/api/quotes", raw=raw)
    assert response.status == 201, response.body
    assert [line["unit_price"] for line in response.body["lines"]] == ["1200.50", "0.00", "99.99"]
    assert Quote.objects.get().total == Decimal("2500.99")


def test_a_percentage_in_other_digits_is_refused(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    body = {
        **quote(customer_a),
        "schedule": [
            {"title": "Deposit", "is_billable": True, "billing_percentage": ARABIC_INDIC_100}
        ],
    }
    api = as_("staff")
    with unchanged():
        response = api.post("/api/quotes", body)
    assert (response.status, response.body["code"]) == (422, "validation_error")


@pytest.mark.parametrize("amount", [ARABIC_INDIC_100, "1_0"])
def test_an_admin_cannot_record_a_payment_in_other_digits(
    as_: Callable[[str], Api], project_a: Project, admin: User, amount: str
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    api = as_("admin")
    body = {"amount": amount, "method": "cash", "received_on": timezone.localdate().isoformat()}
    with unchanged():
        response = api.post(f"/api/projects/{project_a.pk}/invoices/{invoice.pk}/payments", body)
    assert (response.status, response.body["code"]) == (422, "validation_error")


def test_a_payment_reference_and_note_of_invisible_characters_are_stored_empty(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    """The attack run stored a reference of two zero-width spaces."""
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    body = {
        "amount": "10.00",
        "method": "bank_transfer",
        "received_on": timezone.localdate().isoformat(),
        "reference": "\u200b\u200b",
        "note": "\ufeff SEPA 42 \u200b",
    }
    response = as_("admin").post(
        f"/api/projects/{project_a.pk}/invoices/{invoice.pk}/payments", body
    )
    assert response.status == 201
    assert (response.body["payment"]["reference"], response.body["payment"]["note"]) == (
        None,
        "SEPA 42",
    )


def test_a_quote_titled_with_invisible_characters_is_refused(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    api = as_("staff")
    with unchanged():
        response = api.post("/api/quotes", {**quote(customer_a), "title": INVISIBLE})
        line = api.post("/api/quotes", quote(customer_a, description="\u200b"))
    assert (response.status, response.body["code"]) == (422, "title_required")
    assert (line.status, line.body["code"]) == (422, "description_required")


def test_a_milestone_titled_with_invisible_characters_is_refused(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    milestone = project_a.milestones.get(position=1)
    api = as_("staff")
    with unchanged():
        added = api.post(f"/api/projects/{project_a.pk}/milestones", {"title": "\u2060\ufeff"})
        renamed = api.patch(
            f"/api/projects/{project_a.pk}/milestones/{milestone.pk}", {"title": "\u200d"}
        )
    assert (added.status, added.body["code"]) == (422, "title_required")
    assert (renamed.status, renamed.body["code"]) == (422, "title_required")


def test_invisible_characters_around_a_title_are_dropped(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    response = as_("staff").post("/api/quotes", {**quote(customer_a), "title": "\u200bLoft\ufeff"})
    assert (response.status, response.body["title"]) == (201, "Loft")


def test_other_invisible_texts_are_refused_with_their_codes(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    api = as_("admin")
    base = f"/api/projects/{project_a.pk}/invoices"
    with unchanged():
        customer = api.post("/api/customers", {"name": INVISIBLE})
        described = api.patch(f"{base}/{draft.pk}", {"description": "\u200b\u200b"})
        cancelled = api.post(f"{base}/{sent.pk}/cancel", {"reason": "\ufeff"})
    assert (customer.status, customer.body["code"]) == (422, "name_required")
    assert (described.status, described.body["code"]) == (422, "description_required")
    assert (cancelled.status, cancelled.body["code"]) == (422, "reason_required")


@pytest.mark.parametrize(
    "email",
    ["a@[127.0.0.1]", "a@[IPv6:::1]", "a@localhost", "billing@intranet", "a@example."],
)
def test_staff_cannot_give_a_customer_an_address_without_a_domain_name(
    as_: Callable[[str], Api], email: str
) -> None:
    api = as_("staff")
    with unchanged():
        response = api.post("/api/customers", {"name": "Initech", "billing_email": email})
    assert (response.status, response.body["code"]) == (422, "email_invalid")


def test_an_ordinary_address_is_accepted(as_: Callable[[str], Api]) -> None:
    response = as_("staff").post(
        "/api/customers", {"name": "Initech", "billing_email": "AP@Billing.Initech.example"}
    )
    assert (response.status, response.body["billing_email"]) == (201, "ap@billing.initech.example")
