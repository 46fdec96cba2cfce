"""The OpenAPI document says what the API does: each operation's refusals and their shape,
and the bounds of every input in JSON Schema's own words. (Found by schemathesis; see
test_openapi_fuzz.py for the generated requests.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from tests.helpers import Api, unchanged
from tranche.accounts.business import business_row

pytestmark = pytest.mark.django_db

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


@pytest.fixture
def document() -> dict[str, Any]:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_its_refusals_with_the_error_shape(
    document: dict[str, Any],
) -> None:
    undocumented = {}
    for label, operation in operations(document):
        if label == "GET /api/health":
            continue
        expected = {"400"}
        if operation.get("security"):
            expected |= {"401", "403", "404", "409", "422"}
        responses = operation["responses"]
        missing = sorted(s for s in expected if s not in responses)
        wrong = sorted(
            s
            for s in expected & set(responses)
            if responses[s]["content"]["application/json"]["schema"] != ERROR_REF
        )
        if missing or wrong:
            undocumented[label] = (missing, wrong)
    assert undocumented == {}


def test_the_error_shape_is_the_whole_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorOut"]
    assert error["additionalProperties"] is False
    assert error["required"] == ["detail", "code"]
    assert set(error["properties"]) == {"detail", "code", "errors"}


def test_bounds_are_written_as_json_schema_not_as_pydantic_parameters(
    document: dict[str, Any],
) -> None:
    pydantic_words = {"gt", "ge", "lt", "le", "decimal_places", "max_digits", "allow_inf_nan"}
    leaks = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "properties" not in node and pydantic_words & set(node):
                leaks.append((where, sorted(pydantic_words & set(node))))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for n, value in enumerate(node):
                walk(value, f"{where}/{n}")

    walk(document, "")
    assert leaks == []
    quote_in = document["components"]["schemas"]["QuoteIn"]["properties"]
    assert quote_in["customer_id"] == {
        "exclusiveMinimum": 0,
        "title": "Customer Id",
        "type": "integer",
    }
    terms = document["components"]["schemas"]["CustomerIn"]["properties"]["payment_terms_days"]
    assert {"type": "integer", "minimum": 0, "maximum": 365} in terms["anyOf"]


def test_a_document_route_names_its_success_once(document: dict[str, Any]) -> None:
    pdf = document["paths"]["/api/projects/{project_id}/invoices/{invoice_id}/pdf"]["get"]
    assert pdf["responses"]["200"]["content"] == {
        "application/pdf": {"schema": {"type": "string", "format": "binary"}}
    }


@pytest.mark.parametrize("flag", [0, 1, "true", "yes", None])
def test_a_boolean_is_true_or_false_and_nothing_else(as_: Callable[[str], Api], flag: Any) -> None:
    business_row()
    admin = as_("admin")
    body = {
        "price_mode": "exclusive",
        "reverse_charge_note": "",
        "tax_exempt_note": "",
        "country": "",
        "send_deposits_automatically": flag,
    }
    with unchanged():
        response = admin.put("/api/settings/tax", body)
    assert response.status == 422, response.body
    assert response.body["code"] == "validation_error"
    assert [e["field"] for e in response.body["errors"]] == ["send_deposits_automatically"]
    assert set(response.body) == {"detail", "code", "errors"}
