"""Quotes: POST /api/quotes, GET /api/quotes[/{id}], POST /api/quotes/{id}/accept|decline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import REFUSED_STAFF_ONLY, Api, unchanged
from tranche.accounts.models import Customer
from tranche.notifications.quotes import quote_send
from tranche.projects.models import Milestone, Project
from tranche.sales.models import Quote, QuoteStatus

pytestmark = pytest.mark.django_db


def quote_body(customer: Customer, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer.pk,
        "title": "Loft conversion",
        "currency": "USD",
        "lines": [
            {"description": "Design", "quantity": "1", "unit_price": "1200.00"},
            {"description": "Labour (hours)", "quantity": "12.5", "unit_price": "80.10"},
        ],
        "schedule": [
            {"title": "Deposit", "is_billable": True, "billing_percentage": "30"},
            {"title": "Survey", "is_billable": False},
            {"title": "Structure", "is_billable": True, "billing_percentage": "30"},
            {"title": "Handover", "is_billable": True, "billing_percentage": "40"},
        ],
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_create_a_quote(
    as_: Callable[[str], Api], customer_a: Customer, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.post("/api/quotes", quote_body(customer_a))
    assert response.status == status
    assert response.body["code"] == code


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_create_a_quote(
    as_: Callable[[str], Api], customer_a: Customer, persona: str
) -> None:
    response = as_(persona).post("/api/quotes", quote_body(customer_a))
    assert response.status == 201
    quote = Quote.objects.get()
    assert response.body == {
        "id": quote.pk,
        "customer_id": customer_a.pk,
        "title": "Loft conversion",
        "currency": "USD",
        "status": "draft",
        # 1200.00 + 12.5 * 80.10 = 1200.00 + 1001.25
        "total": "2201.25",
        # No line has a rate: all of it is one untaxed basis.
        "price_mode": "exclusive",
        "net": "2201.25",
        "tax": "0.00",
        "gross": "2201.25",
        "tax_lines": [
            {
                "name": "",
                "percentage": "0.00",
                "rate_percentage": "0.00",
                "net": "2201.25",
                "tax": "0.00",
                "gross": "2201.25",
            }
        ],
        "lines": [
            {
                "position": 1,
                "description": "Design",
                "quantity": "1",
                "unit_price": "1200.00",
                "line_total": "1200.00",
                "tax_rate_id": None,
                "tax_name": "",
                "tax_percentage": "0.00",
            },
            {
                "position": 2,
                "description": "Labour (hours)",
                "quantity": "12.5",
                "unit_price": "80.10",
                "line_total": "1001.25",
                "tax_rate_id": None,
                "tax_name": "",
                "tax_percentage": "0.00",
            },
        ],
        "schedule": [
            {
                "position": 1,
                "title": "Deposit",
                "is_billable": True,
                "billing_percentage": "30.00",
                "bill_on_acceptance": False,
            },
            {
                "position": 2,
                "title": "Survey",
                "is_billable": False,
                "billing_percentage": None,
                "bill_on_acceptance": False,
            },
            {
                "position": 3,
                "title": "Structure",
                "is_billable": True,
                "billing_percentage": "30.00",
                "bill_on_acceptance": False,
            },
            {
                "position": 4,
                "title": "Handover",
                "is_billable": True,
                "billing_percentage": "40.00",
                "bill_on_acceptance": False,
            },
        ],
        "project_id": None,
        "created_at": response.body["created_at"],
        "accepted_at": None,
    }


def test_line_totals_round_half_up_to_the_currency(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    body = quote_body(
        customer_a,
        lines=[{"description": "Widgets", "quantity": "3", "unit_price": "0.335"}],
        currency="KWD",
        schedule=[],
    )
    response = as_("staff").post("/api/quotes", body)
    assert response.status == 201
    assert response.body["total"] == "1.005"

    jpy = quote_body(
        customer_a,
        currency="jpy",
        lines=[{"description": "Work", "quantity": "1.5", "unit_price": "999"}],
        schedule=[],
    )
    response = as_("staff").post("/api/quotes", jpy)
    assert response.body["currency"] == "JPY"
    assert response.body["total"] == "1499"  # 1498.5 rounds half up


def test_json_numbers_are_taken_as_exact_decimals(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    raw = (
        f'{{"customer_id": {customer_a.pk}, "title": "T", "currency": "USD", '
        '"lines": [{"description": "A", "quantity": 3, "unit_price": 0.1}], "schedule": []}'
    )
    response = as_("staff").post("/api/quotes", raw=raw)
    assert response.status == 201
    assert response.body["total"] == "0.30"


BAD_QUOTES: list[tuple[str, dict[str, Any], str]] = [
    ("no lines", {"lines": []}, "validation_error"),
    (
        "negative quantity",
        {"lines": [{"description": "A", "quantity": "-1", "unit_price": "10"}]},
        "validation_error",
    ),
    (
        "zero quantity",
        {"lines": [{"description": "A", "quantity": "0", "unit_price": "10"}]},
        "validation_error",
    ),
    (
        "negative price",
        {"lines": [{"description": "A", "quantity": "1", "unit_price": "-10"}]},
        "validation_error",
    ),
    (
        "price finer than cents",
        {"lines": [{"description": "A", "quantity": "1", "unit_price": "10.001"}]},
        "amount_precision",
    ),
    (
        "price as text",
        {"lines": [{"description": "A", "quantity": "1", "unit_price": "ten"}]},
        "validation_error",
    ),
    (
        "NaN price",
        {"lines": [{"description": "A", "quantity": "1", "unit_price": "NaN"}]},
        "validation_error",
    ),
    ("unknown currency", {"currency": "XYZ"}, "currency_invalid"),
    ("currency too long", {"currency": "DOLLAR"}, "validation_error"),
    ("blank title", {"title": "  "}, "title_required"),
    ("unknown customer", {"customer_id": 999999}, "customer_not_found"),
    ("huge customer id", {"customer_id": 2**70}, "customer_not_found"),
    ("unknown field", {"discount": "10"}, "validation_error"),
    (
        "unknown line field",
        {"lines": [{"description": "A", "quantity": "1", "unit_price": "1", "tax": "0"}]},
        "validation_error",
    ),
    (
        "schedule over 100",
        {
            "schedule": [
                {"title": "A", "is_billable": True, "billing_percentage": "60"},
                {"title": "B", "is_billable": True, "billing_percentage": "40.01"},
            ]
        },
        "schedule_over_100",
    ),
    (
        "billable without percentage",
        {"schedule": [{"title": "A", "is_billable": True}]},
        "billing_percentage_required",
    ),
    (
        "billable at zero",
        {"schedule": [{"title": "A", "is_billable": True, "billing_percentage": "0"}]},
        "billing_percentage_required",
    ),
    (
        "negative percentage",
        {"schedule": [{"title": "A", "is_billable": True, "billing_percentage": "-5"}]},
        "validation_error",
    ),
    (
        "three-decimal percentage",
        {"schedule": [{"title": "A", "is_billable": True, "billing_percentage": "33.333"}]},
        "validation_error",
    ),
    (
        "percentage on non-billable",
        {"schedule": [{"title": "A", "is_billable": False, "billing_percentage": "10"}]},
        "billing_percentage_not_billable",
    ),
    (
        "total too large",
        {"lines": [{"description": "A", "quantity": "999999999", "unit_price": "99999999999"}]},
        "total_too_large",
    ),
]


@pytest.mark.parametrize(("case", "overrides", "code"), BAD_QUOTES, ids=[c[0] for c in BAD_QUOTES])
def test_bad_quotes_are_refused_with_422_and_nothing_is_stored(
    as_: Callable[[str], Api], customer_a: Customer, case: str, overrides: dict[str, Any], code: str
) -> None:
    api = as_("staff")
    body = quote_body(customer_a)
    body.update(overrides)
    with unchanged():
        response = api.post("/api/quotes", body)
    assert response.status == 422, response.body
    assert response.body["code"] == code
    assert response.body["detail"]


def test_malformed_quote_json_is_400(as_: Callable[[str], Api]) -> None:
    api = as_("staff")
    with unchanged():
        response = api.post("/api/quotes", raw='{"title": "x",')
    assert response.status == 400
    assert response.body["code"] == "malformed_request"


@pytest.mark.parametrize("persona", ["admin", "staff", "alice"])
def test_who_may_read_customer_as_quote(
    as_: Callable[[str], Api], admin: Any, quote_a: Quote, persona: str
) -> None:
    quote_send(actor=admin, quote_id=quote_a.pk)
    response = as_(persona).get(f"/api/quotes/{quote_a.pk}")
    assert response.status == 200
    assert response.body["id"] == quote_a.pk
    assert response.body["customer_id"] == quote_a.customer_id
    assert response.body["title"] == quote_a.title
    assert response.body["status"] == "sent"


def test_a_customer_never_reads_a_draft_quote(as_: Callable[[str], Api], quote_a: Quote) -> None:
    assert as_("alice").get(f"/api/quotes/{quote_a.pk}").status == 404
    assert as_("alice").get("/api/quotes").body["count"] == 0


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [("bob", 404, "quote_not_found"), ("anonymous", 401, "not_authenticated")],
)
def test_who_may_not_read_customer_as_quote(
    as_: Callable[[str], Api], quote_a: Quote, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.get(f"/api/quotes/{quote_a.pk}")
    assert response.status == status
    assert response.body["code"] == code
    assert "title" not in response.body


def test_quote_lists_are_scoped_to_the_customer(
    as_: Callable[[str], Api], admin: Any, customer_a: Customer, customer_b: Customer
) -> None:
    from tests.factories import make_quote

    mine = make_quote(actor=admin, customer=customer_a, title="A's quote")
    theirs = make_quote(actor=admin, customer=customer_b, title="B's quote")
    for quote in (mine, theirs):
        quote_send(actor=admin, quote_id=quote.pk)

    assert {q["id"] for q in as_("staff").get("/api/quotes").body["items"]} == {mine.pk, theirs.pk}
    alice_view = as_("alice").get("/api/quotes").body
    assert [q["id"] for q in alice_view["items"]] == [mine.pk]
    assert alice_view["count"] == 1


def test_unknown_quote_is_404(as_: Callable[[str], Api]) -> None:
    assert as_("staff").get("/api/quotes/424242").body["code"] == "quote_not_found"


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_accept_a_quote(
    as_: Callable[[str], Api], quote_a: Quote, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.post(f"/api/quotes/{quote_a.pk}/accept")
    assert response.status == status
    assert response.body["code"] == code


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_accept_a_quote(as_: Callable[[str], Api], quote_a: Quote, persona: str) -> None:
    response = as_(persona).post(f"/api/quotes/{quote_a.pk}/accept")
    assert response.status == 201
    project = Project.objects.get()
    assert response.body == {
        "project": as_("staff").get(f"/api/projects/{project.pk}").body,
        "deposit_invoices": [],  # no schedule item is billed on acceptance
    }
    assert response.body["project"]["origin_quote_id"] == quote_a.pk
    assert response.body["project"]["contract_total"] == "1000.00"
    assert [m["amount"] for m in response.body["project"]["milestones"]] == [
        "300.00",
        "300.00",
        "400.00",
    ]
    quote_a.refresh_from_db()
    assert quote_a.status == QuoteStatus.ACCEPTED
    assert as_("staff").get(f"/api/quotes/{quote_a.pk}").body["project_id"] == project.pk


def test_accepting_creates_one_milestone_per_schedule_item_in_order(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    api = as_("staff")
    quote = api.post("/api/quotes", quote_body(customer_a)).body
    project = api.post(f"/api/quotes/{quote['id']}/accept").body["project"]
    assert [
        (
            m["position"],
            m["title"],
            m["is_billable"],
            m["billing_percentage"],
            m["status"],
            m["amount"],
        )
        for m in project["milestones"]
    ] == [
        (1, "Deposit", True, "30.00", "pending", "660.38"),
        (2, "Survey", False, None, "pending", "0.00"),
        (3, "Structure", True, "30.00", "pending", "660.37"),
        (4, "Handover", True, "40.00", "pending", "880.50"),
    ]
    assert project["contract_total"] == "2201.25"
    assert project["customer_id"] == customer_a.pk
    assert project["currency"] == "USD"


def test_a_quote_is_accepted_once(as_: Callable[[str], Api], quote_a: Quote) -> None:
    api = as_("staff")
    assert api.post(f"/api/quotes/{quote_a.pk}/accept").status == 201
    with unchanged():
        again = api.post(f"/api/quotes/{quote_a.pk}/accept")
    assert again.status == 409
    assert again.body["code"] == "quote_not_draft"
    assert Project.objects.count() == 1


def test_a_declined_quote_cannot_be_accepted(as_: Callable[[str], Api], quote_a: Quote) -> None:
    api = as_("staff")
    declined = api.post(f"/api/quotes/{quote_a.pk}/decline")
    assert declined.status == 200
    assert declined.body["status"] == "declined"
    with unchanged():
        response = api.post(f"/api/quotes/{quote_a.pk}/accept")
    assert response.status == 409
    assert Milestone.objects.count() == 0


def test_another_customers_user_cannot_learn_that_a_quote_exists(
    as_: Callable[[str], Api], quote_a: Quote
) -> None:
    bob = as_("bob")
    with unchanged():
        accept = bob.post(f"/api/quotes/{quote_a.pk}/accept")
    assert accept.status == 403  # customers may not accept at all: refused before any lookup
    assert bob.get(f"/api/quotes/{quote_a.pk}").status == 404
    assert bob.get("/api/quotes/999999").status == 404


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("admin", {"A", "B"}),
        ("staff", {"A", "B"}),
        ("alice", {"A"}),
        ("bob", {"B"}),
    ],
)
def test_who_sees_which_quotes_in_the_list(
    as_: Callable[[str], Api],
    admin: Any,
    customer_a: Customer,
    customer_b: Customer,
    persona: str,
    expected: set[str],
) -> None:
    from tests.factories import make_quote

    for customer, title in ((customer_a, "A"), (customer_b, "B")):
        quote_send(actor=admin, quote_id=make_quote(actor=admin, customer=customer, title=title).pk)
    response = as_(persona).get("/api/quotes")
    assert response.status == 200
    assert {q["title"] for q in response.body["items"]} == expected
    assert response.body["count"] == len(expected)


def test_anonymous_sees_no_quote_list(as_: Callable[[str], Api], quote_a: Quote) -> None:
    response = as_("anonymous").get("/api/quotes")
    assert response.status == 401
    assert response.body["code"] == "not_authenticated"
