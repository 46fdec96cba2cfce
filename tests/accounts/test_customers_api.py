"""Customers: POST/GET /api/customers, GET /api/customers/{id}."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers import REFUSED_STAFF_ONLY, Api, unchanged
from tranche.accounts.models import Customer

pytestmark = pytest.mark.django_db

NEW_CUSTOMER = {
    "name": "Initech",
    "billing_email": "AP@initech.example",
    "contact_name": "Bill Lumbergh",
    "address": "4120 Freidrich Lane\nAustin TX",
    "payment_terms_days": 30,
}


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_create_a_customer(as_: Callable[[str], Api], persona: str) -> None:
    response = as_(persona).post("/api/customers", NEW_CUSTOMER)
    assert response.status == 201
    created = Customer.objects.get(pk=response.body["id"])
    assert response.body == {
        "id": created.pk,
        "name": "Initech",
        "billing_email": "ap@initech.example",
        "contact_name": "Bill Lumbergh",
        "address": "4120 Freidrich Lane\nAustin TX",
        "tax_id": "",
        "country": "",
        "tax_treatment": "standard",
        "payment_terms_days": 30,
        "created_at": response.body["created_at"],
    }
    assert response.body["created_at"].endswith("Z") or "+" in response.body["created_at"]
    assert (created.name, created.billing_email, created.payment_terms_days) == (
        "Initech",
        "ap@initech.example",
        30,
    )


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_create_a_customer(
    as_: Callable[[str], Api], persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.post("/api/customers", NEW_CUSTOMER)
    assert response.status == status
    assert set(response.body) == {"detail", "code"}
    assert response.body["code"] == code


def test_billing_email_is_optional_and_terms_default_to_14_days(as_: Callable[[str], Api]) -> None:
    response = as_("staff").post("/api/customers", {"name": "Walk-in client"})
    assert response.status == 201
    assert response.body["billing_email"] == ""
    assert response.body["payment_terms_days"] == 14


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "validation_error"),
        ({"name": ""}, 422, "validation_error"),
        ({"name": "   "}, 422, "name_required"),
        ({"name": "X", "billing_email": "not-an-email"}, 422, "email_invalid"),
        ({"name": "X", "payment_terms_days": -1}, 422, "validation_error"),
        ({"name": "X", "payment_terms_days": 366}, 422, "validation_error"),
        ({"name": "X", "payment_terms_days": "soon"}, 422, "validation_error"),
        ({"name": "X", "vip": True}, 422, "validation_error"),
        ({"name": 42}, 422, "validation_error"),
    ],
)
def test_bad_customer_input_is_refused_and_nothing_is_created(
    as_: Callable[[str], Api], body: dict[str, object], status: int, code: str
) -> None:
    api = as_("admin")
    with unchanged():
        response = api.post("/api/customers", body)
    assert response.status == status
    assert response.body["code"] == code


def test_malformed_json_is_400(as_: Callable[[str], Api]) -> None:
    api = as_("admin")
    with unchanged():
        response = api.post("/api/customers", raw='{"name": ')
    assert response.status == 400
    assert response.body == {
        "detail": "The request body is not valid JSON.",
        "code": "malformed_request",
    }


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_list_customers(
    as_: Callable[[str], Api], customer_a: Customer, customer_b: Customer, persona: str
) -> None:
    response = as_(persona).get("/api/customers")
    assert response.status == 200
    assert response.body["count"] == 2
    assert [c["name"] for c in response.body["items"]] == ["Acme Builders", "Globex Studio"]


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_list_customers(
    as_: Callable[[str], Api],
    customer_a: Customer,
    customer_b: Customer,
    persona: str,
    status: int,
    code: str,
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.get("/api/customers")
    assert response.status == status
    assert set(response.body) == {"detail", "code"}
    assert response.body["code"] == code


def test_customer_list_pages(
    as_: Callable[[str], Api], customer_a: Customer, customer_b: Customer
) -> None:
    page = as_("staff").get("/api/customers?limit=1&offset=1")
    assert page.body["count"] == 2
    assert [c["name"] for c in page.body["items"]] == ["Globex Studio"]
    assert as_("staff").get("/api/customers?limit=0").status == 422
    assert as_("staff").get("/api/customers?limit=abc").status == 422


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_read_a_customer(
    as_: Callable[[str], Api], customer_a: Customer, persona: str
) -> None:
    response = as_(persona).get(f"/api/customers/{customer_a.pk}")
    assert response.status == 200
    assert response.body["id"] == customer_a.pk
    assert response.body["name"] == "Acme Builders"
    assert response.body["billing_email"] == "accounts@acme.example"


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_read_a_customer(
    as_: Callable[[str], Api], customer_a: Customer, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.get(f"/api/customers/{customer_a.pk}")
    assert response.status == status
    assert set(response.body) == {"detail", "code"}
    assert response.body["code"] == code


@pytest.mark.parametrize("customer_id", ["999999", "9223372036854775808", "0"])
def test_unknown_customer_ids_are_404(as_: Callable[[str], Api], customer_id: str) -> None:
    response = as_("staff").get(f"/api/customers/{customer_id}")
    assert response.status == 404
    assert response.body["code"] in {"customer_not_found", "not_found"}


def test_a_non_numeric_id_is_a_json_422_naming_the_field(as_: Callable[[str], Api]) -> None:
    response = as_("staff").get("/api/customers/abc")
    assert response.status == 422
    assert response.body["code"] == "validation_error"
    assert response.body["errors"][0]["field"] == "customer_id"


def test_an_unknown_api_path_is_a_json_404(as_: Callable[[str], Api]) -> None:
    response = as_("staff").get("/api/nothing-here")
    assert response.status == 404
    assert response.body["code"] == "not_found"


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_replace_a_customers_details_and_keep_the_terms_they_leave_out(
    as_: Callable[[str], Api], persona: str, customer_a: Customer
) -> None:
    Customer.objects.filter(pk=customer_a.pk).update(payment_terms_days=21)
    response = as_(persona).put(
        f"/api/customers/{customer_a.pk}",
        {"name": "Acme Builders Ltd", "billing_email": "ap@acme.example", "tax_id": "GB 123"},
    )
    assert response.status == 200
    assert (
        response.body["name"],
        response.body["tax_id"],
        response.body["payment_terms_days"],
    ) == (
        "Acme Builders Ltd",
        "GB 123",
        21,
    )
    customer_a.refresh_from_db()
    assert (customer_a.name, customer_a.billing_email, customer_a.tax_id) == (
        "Acme Builders Ltd",
        "ap@acme.example",
        "GB 123",
    )


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_replace_a_customers_details(
    as_: Callable[[str], Api], persona: str, status: int, code: str, customer_a: Customer
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.put(f"/api/customers/{customer_a.pk}", {"name": "Mine now"})
    assert (response.status, response.body["code"]) == (status, code)


def test_replacing_an_unknown_customer_or_with_bad_values_changes_nothing(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    api = as_("staff")
    with unchanged():
        missing = api.put("/api/customers/999999", {"name": "Nobody"})
        blank = api.put(f"/api/customers/{customer_a.pk}", {"name": "Acme", "billing_email": "x"})
    assert (missing.status, missing.body["code"]) == (404, "customer_not_found")
    assert blank.status == 422
