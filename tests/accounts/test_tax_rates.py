"""Tax rates (/api/tax-rates) and the tax settings (/api/settings/tax): who may do what,
the rules a rate and the settings follow, and that a refusal changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.helpers import REFUSED_ADMIN_ONLY, REFUSED_STAFF_ONLY, Api, unchanged
from tranche.accounts.business import (
    DEFAULT_REVERSE_CHARGE_NOTE,
    DEFAULT_TAX_EXEMPT_NOTE,
    business_profile,
)
from tranche.accounts.models import Customer, TaxRate, User
from tranche.sales.models import QuoteLine
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def vat() -> TaxRate:
    return TaxRate.objects.create(name="VAT 20 %", percentage=Decimal("20.00"))


def rate_out(rate: TaxRate) -> dict[str, object]:
    rate.refresh_from_db()
    return {
        "id": rate.pk,
        "name": rate.name,
        "percentage": f"{rate.percentage:.2f}",
        "is_active": rate.is_active,
    }


# --- who may -------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_and_admins_read_the_rates(
    as_: Callable[[str], Api], vat: TaxRate, persona: str
) -> None:
    retired = TaxRate.objects.create(name="Old VAT", percentage=Decimal(19), is_active=False)
    response = as_(persona).get("/api/tax-rates")
    assert response.status == 200
    assert [r["name"] for r in response.body] == ["Old VAT", "VAT 20 %"]
    offered = as_(persona).get("/api/tax-rates?active=true").body
    assert [r["id"] for r in offered] == [vat.pk]
    assert as_(persona).get(f"/api/tax-rates/{retired.pk}").body["is_active"] is False


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_customers_and_strangers_read_no_rates(
    as_: Callable[[str], Api], vat: TaxRate, persona: str, status: int, code: str
) -> None:
    for path in ("/api/tax-rates", f"/api/tax-rates/{vat.pk}"):
        response = as_(persona).get(path)
        assert (response.status, response.body["code"]) == (status, code)


def test_an_admin_creates_a_rate(as_: Callable[[str], Api]) -> None:
    response = as_("admin").post("/api/tax-rates", {"name": "  VAT  5 % ", "percentage": "5.5"})
    assert response.status == 201
    rate = TaxRate.objects.get()
    assert (rate.name, rate.percentage, rate.is_active) == ("VAT 5 %", Decimal("5.50"), True)
    assert {k: v for k, v in response.body.items() if k != "created_at"} == rate_out(rate)


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_only_an_admin_changes_rates(
    as_: Callable[[str], Api], vat: TaxRate, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        for method, path, body in (
            ("POST", "/api/tax-rates", {"name": "GST 10 %", "percentage": "10"}),
            ("PATCH", f"/api/tax-rates/{vat.pk}", {"percentage": "21"}),
            ("POST", f"/api/tax-rates/{vat.pk}/retire", None),
            ("POST", f"/api/tax-rates/{vat.pk}/reactivate", None),
        ):
            response = api.request(method, path, body)
            # A customer is refused before any lookup: no rate id is confirmed to them.
            assert (response.status, response.body["code"]) == (status, code), path


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "VAT 20 %", "percentage": "21"}, "tax_rate_name_taken"),
        ({"name": "vat 20 %", "percentage": "21"}, "tax_rate_name_taken"),
        ({"name": "   ", "percentage": "5"}, "name_required"),
        ({"name": "Too much", "percentage": "100.01"}, "validation_error"),
        ({"name": "Negative", "percentage": "-1"}, "validation_error"),
        ({"name": "Three decimals", "percentage": "5.555"}, "validation_error"),
        ({"name": "No number", "percentage": "five"}, "validation_error"),
    ],
)
def test_a_rate_that_breaks_a_rule_is_refused_and_nothing_changes(
    as_: Callable[[str], Api], vat: TaxRate, body: dict[str, str], code: str
) -> None:
    api = as_("admin")
    with unchanged():
        response = api.post("/api/tax-rates", body)
    assert response.body["code"] == code
    assert response.status == (409 if code == "tax_rate_name_taken" else 422)
    assert response.body["detail"]


def test_editing_a_rate_leaves_quote_lines_with_their_copy(
    as_: Callable[[str], Api], vat: TaxRate, admin: User, customer_a: Customer
) -> None:
    quote_create(
        actor=admin,
        customer_id=customer_a.pk,
        title="Roof",
        currency="EUR",
        lines=[LineInput("Tiles", Decimal(1), Decimal(100), vat.pk)],
        schedule=[ScheduleInput("All", True, Decimal(100))],
    )
    response = as_("admin").patch(
        f"/api/tax-rates/{vat.pk}", {"name": "VAT 21 %", "percentage": "21"}
    )
    assert response.status == 200
    assert (response.body["name"], response.body["percentage"]) == ("VAT 21 %", "21.00")
    line = QuoteLine.objects.get()
    assert (line.tax_name, line.tax_percentage) == ("VAT 20 %", Decimal("20.00"))


def test_a_rename_to_another_rates_name_is_refused(as_: Callable[[str], Api], vat: TaxRate) -> None:
    other = TaxRate.objects.create(name="VAT 5 %", percentage=Decimal(5))
    api = as_("admin")
    with unchanged():
        response = api.patch(f"/api/tax-rates/{other.pk}", {"name": "VAT 20 %"})
    assert (response.status, response.body["code"]) == (409, "tax_rate_name_taken")


def test_a_missing_rate_is_404(as_: Callable[[str], Api]) -> None:
    for method, path in (
        ("GET", "/api/tax-rates/999"),
        ("PATCH", "/api/tax-rates/999"),
        ("POST", "/api/tax-rates/999/retire"),
    ):
        response = as_("admin").request(method, path, {} if method == "PATCH" else None)
        assert (response.status, response.body["code"]) == (404, "tax_rate_not_found")


def test_a_retired_rate_is_no_longer_offered_and_can_be_offered_again(
    as_: Callable[[str], Api], vat: TaxRate, admin: User, customer_a: Customer
) -> None:
    response = as_("admin").post(f"/api/tax-rates/{vat.pk}/retire")
    assert (response.status, response.body["is_active"]) == (200, False)
    assert as_("staff").get("/api/tax-rates?active=true").body == []
    line = {"description": "Tiles", "quantity": "1", "unit_price": "100", "tax_rate_id": vat.pk}
    body = {
        "customer_id": customer_a.pk,
        "title": "Roof",
        "currency": "EUR",
        "lines": [line],
        "schedule": [{"title": "All", "is_billable": True, "billing_percentage": "100"}],
    }
    staff = as_("staff")
    with unchanged():
        refused = staff.post("/api/quotes", body)
    assert (refused.status, refused.body["code"]) == (422, "tax_rate_not_found")
    # Retiring twice is harmless; reactivating offers it again.
    assert as_("admin").post(f"/api/tax-rates/{vat.pk}/retire").status == 200
    again = as_("admin").post(f"/api/tax-rates/{vat.pk}/reactivate")
    assert (again.status, again.body["is_active"]) == (200, True)
    assert as_("staff").post("/api/quotes", body).status == 201


# --- the tax settings ----------------------------------------------------------------------

SETTINGS = {
    "price_mode": "inclusive",
    "reverse_charge_note": "Reverse charge: VAT to be accounted for by the recipient.",
    "tax_exempt_note": "",
    "country": "de",
    "send_deposits_automatically": True,
}


def test_an_admin_reads_and_replaces_the_tax_settings(as_: Callable[[str], Api]) -> None:
    before = as_("admin").get("/api/settings/tax")
    assert before.status == 200
    assert before.body == {
        "price_mode": "exclusive",
        "reverse_charge_note": "",
        "tax_exempt_note": "",
        "country": "",
        "send_deposits_automatically": False,
        "default_reverse_charge_note": DEFAULT_REVERSE_CHARGE_NOTE,
        "default_tax_exempt_note": DEFAULT_TAX_EXEMPT_NOTE,
    }
    response = as_("admin").put("/api/settings/tax", SETTINGS)
    assert response.status == 200
    assert response.body == {
        **before.body,
        **SETTINGS,
        "country": "DE",
    }
    profile = business_profile()
    assert (profile.price_mode, profile.country, profile.send_deposits_automatically) == (
        "inclusive",
        "DE",
        True,
    )
    assert profile.reverse_charge_note == SETTINGS["reverse_charge_note"]
    assert profile.tax_exempt_note == DEFAULT_TAX_EXEMPT_NOTE  # blank: the default wording


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_only_an_admin_reads_or_changes_the_tax_settings(
    as_: Callable[[str], Api], persona: str, status: int, code: str
) -> None:
    as_("admin").get("/api/settings/tax")  # the settings row exists
    api = as_(persona)
    with unchanged():
        for method in ("GET", "PUT"):
            response = api.request(method, "/api/settings/tax", SETTINGS)
            assert (response.status, response.body["code"]) == (status, code)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"country": "XX"}, "business_invalid"),
        ({"country": "EU"}, "business_invalid"),
        ({"price_mode": "sometimes"}, "validation_error"),
        ({"country": "DEU"}, "validation_error"),
    ],
)
def test_tax_settings_that_break_a_rule_are_refused_and_nothing_changes(
    as_: Callable[[str], Api], change: dict[str, str], code: str
) -> None:
    api = as_("admin")
    api.get("/api/settings/tax")
    with unchanged():
        response = api.put("/api/settings/tax", {**SETTINGS, **change})
    assert (response.status, response.body["code"]) == (422, code)


def test_the_price_mode_applies_to_new_quotes_only(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    def quote() -> Any:
        return (
            as_("staff")
            .post(
                "/api/quotes",
                {
                    "customer_id": customer_a.pk,
                    "title": "Roof",
                    "currency": "EUR",
                    "lines": [{"description": "Tiles", "quantity": "1", "unit_price": "100"}],
                },
            )
            .body
        )

    first = quote()
    as_("admin").put("/api/settings/tax", SETTINGS)
    second = quote()
    assert (first["price_mode"], second["price_mode"]) == ("exclusive", "inclusive")
    assert as_("staff").get(f"/api/quotes/{first['id']}").body["price_mode"] == "exclusive"


# --- customers -----------------------------------------------------------------------------


def test_a_customers_tax_treatment_and_country_are_kept_and_checked(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    body = {"name": "Müller GmbH", "country": "de", "tax_treatment": "reverse_charge"}
    created = as_("staff").post("/api/customers", body)
    assert created.status == 201
    assert (created.body["country"], created.body["tax_treatment"]) == ("DE", "reverse_charge")
    for bad, code in (
        ({"country": "ZZ"}, "country_invalid"),
        ({"tax_treatment": "sometimes"}, "validation_error"),
    ):
        staff = as_("staff")
        with unchanged():
            response = staff.put(f"/api/customers/{customer_a.pk}", {"name": "A", **bad})
        assert (response.status, response.body["code"]) == (422, code)
    replaced = as_("staff").put(
        f"/api/customers/{customer_a.pk}", {"name": customer_a.name, "tax_treatment": "exempt"}
    )
    assert replaced.body["tax_treatment"] == "exempt"
    customer_a.refresh_from_db()
    assert customer_a.tax_treatment == "exempt"


@pytest.mark.parametrize("rate_id", [999, 2**63])
def test_a_quote_line_with_an_unknown_rate_is_refused(
    as_: Callable[[str], Api], customer_a: Customer, rate_id: int
) -> None:
    staff = as_("staff")
    line = {"description": "Tiles", "quantity": "1", "unit_price": "100", "tax_rate_id": rate_id}
    with unchanged():
        response = staff.post(
            "/api/quotes",
            {"customer_id": customer_a.pk, "title": "Roof", "currency": "EUR", "lines": [line]},
        )
    assert (response.status, response.body["code"]) == (422, "tax_rate_not_found")
