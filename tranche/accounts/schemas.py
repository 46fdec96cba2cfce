from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from tranche.accounts.business import DEFAULT_REVERSE_CHARGE_NOTE, DEFAULT_TAX_EXEMPT_NOTE
from tranche.accounts.models import Business, Customer, SecurityEvent, TaxRate
from tranche.core.schemas import Days, Flag, Input, Percentage, Text200

TaxTreatmentIn = Literal["standard", "reverse_charge", "exempt"]
PriceModeIn = Literal["exclusive", "inclusive"]


class TokenIn(Input):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    # For an account with two-factor authentication: a current code from the
    # authenticator app, or an unused recovery code.
    code: str | None = Field(None, max_length=64)


class TokenOut(Schema):
    token: str


class CustomerIn(Input):
    name: Text200
    billing_email: str = Field("", max_length=254)
    contact_name: str = Field("", max_length=200)
    address: str = Field("", max_length=2000)
    tax_id: str = Field("", max_length=64)
    # ISO 3166-1 alpha-2 ("DE"); blank when unknown.
    country: str = Field("", max_length=2)
    # Standard: taxed at the quote lines' rates. Reverse charge or exempt: 0 % with the
    # legal note from the tax settings.
    tax_treatment: TaxTreatmentIn = "standard"
    # Left out: the business's default terms (the settings page), 14 days unless changed.
    payment_terms_days: Days | None = None


class CustomerOut(Schema):
    id: int
    name: str
    billing_email: str
    contact_name: str
    address: str
    tax_id: str
    country: str
    tax_treatment: str
    payment_terms_days: int
    created_at: datetime

    @staticmethod
    def of(customer: Customer) -> CustomerOut:
        return CustomerOut.model_validate(customer, from_attributes=True)


class CustomerPage(Schema):
    items: list[CustomerOut]
    count: int


class TaxRateIn(Input):
    name: Text200
    # 0 to 100 with at most two decimal places ("20", "5.5").
    percentage: Percentage


class TaxRatePatch(Input):
    name: Text200 | None = None
    percentage: Percentage | None = None


class TaxRateOut(Schema):
    id: int
    name: str
    percentage: str
    is_active: bool
    created_at: datetime

    @staticmethod
    def of(rate: TaxRate) -> TaxRateOut:
        return TaxRateOut(
            id=rate.pk,
            name=rate.name,
            percentage=f"{rate.percentage:.2f}",
            is_active=rate.is_active,
            created_at=rate.created_at,
        )


class TaxSettingsIn(Input):
    price_mode: PriceModeIn
    # Blank: the default wording (see TaxSettingsOut.default_*).
    reverse_charge_note: str = Field("", max_length=500)
    tax_exempt_note: str = Field("", max_length=500)
    country: str = Field("", max_length=2)
    send_deposits_automatically: Flag = False


class TaxSettingsOut(Schema):
    price_mode: str
    reverse_charge_note: str
    tax_exempt_note: str
    country: str
    send_deposits_automatically: bool
    # What the invoices print when a note is left blank.
    default_reverse_charge_note: str
    default_tax_exempt_note: str

    @staticmethod
    def of(row: Business) -> TaxSettingsOut:
        """From the settings row as saved (a blank note stays blank here)."""
        return TaxSettingsOut(
            price_mode=row.price_mode,
            reverse_charge_note=row.reverse_charge_note,
            tax_exempt_note=row.tax_exempt_note,
            country=row.country,
            send_deposits_automatically=row.send_deposits_automatically,
            default_reverse_charge_note=DEFAULT_REVERSE_CHARGE_NOTE,
            default_tax_exempt_note=DEFAULT_TAX_EXEMPT_NOTE,
        )


class SecurityEventOut(Schema):
    id: int
    at: datetime
    kind: str
    actor_id: int | None
    actor_email: str
    target_id: int | None
    target_email: str
    ip_address: str | None
    user_agent: str
    detail: str

    @staticmethod
    def of(event: SecurityEvent) -> SecurityEventOut:
        return SecurityEventOut.model_validate(event, from_attributes=True)


class SecurityEventPage(Schema):
    items: list[SecurityEventOut]
    count: int
