"""A quote's amounts are Money in the quote's currency; reading them costs no query."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.helpers import Api
from tranche.accounts.models import Customer, User
from tranche.core.money import Money
from tranche.sales.models import Quote, QuoteLine
from tranche.sales.services import LineInput, quote_create


def test_a_quotes_total_and_its_lines_are_money_in_the_quotes_currency() -> None:
    quote = Quote(currency="KWD", total=Decimal("1.005"))
    line = QuoteLine(
        quote=quote, quantity=Decimal(3), unit_price=Decimal("0.335"), line_total=Decimal("1.005")
    )
    assert quote.price == Money(Decimal("1.005"), "KWD")
    assert line.each == Money(Decimal("0.335"), "KWD")
    assert line.subtotal == Money(Decimal("1.005"), "KWD")
    assert (str(line.each), line.subtotal.api) == ("KWD0.335", "1.005")


@pytest.mark.django_db
def test_listing_quotes_costs_the_same_queries_however_many_lines_they_have(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    def add_quote(lines: int) -> None:
        quote_create(
            actor=admin,
            customer_id=customer_a.pk,
            title=f"{lines} lines",
            currency="KWD",
            lines=[LineInput(f"Line {n}", Decimal(1), Decimal("0.335")) for n in range(lines)],
            schedule=[],
        )

    def queries_to_list() -> int:
        api = as_("staff")
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/quotes")
        assert response.status == 200
        assert {line["unit_price"] for q in response.body["items"] for line in q["lines"]} == {
            "0.335"
        }
        return len(queries)

    add_quote(1)
    one_line = queries_to_list()
    add_quote(20)
    add_quote(5)
    assert queries_to_list() == one_line
