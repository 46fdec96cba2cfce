from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field

from tranche.accounts.models import Customer
from tranche.core.schemas import Days, Input, Text200


class TokenIn(Input):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(Schema):
    token: str


class CustomerIn(Input):
    name: Text200
    billing_email: str = Field("", max_length=254)
    contact_name: str = Field("", max_length=200)
    address: str = Field("", max_length=2000)
    tax_id: str = Field("", max_length=64)
    # Left out: the business's default terms (the settings page), 14 days unless changed.
    payment_terms_days: Days | None = None


class CustomerOut(Schema):
    id: int
    name: str
    billing_email: str
    contact_name: str
    address: str
    tax_id: str
    payment_terms_days: int
    created_at: datetime

    @staticmethod
    def of(customer: Customer) -> CustomerOut:
        return CustomerOut.model_validate(customer, from_attributes=True)


class CustomerPage(Schema):
    items: list[CustomerOut]
    count: int
