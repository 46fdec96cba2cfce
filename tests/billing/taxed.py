"""Taxed invoices for the e-invoice and export tests: a business and customers with
addresses, countries and VAT ids, and projects whose quote lines carry tax rates."""

from __future__ import annotations

from decimal import Decimal

from tests.billing.helpers import draft_for
from tranche.accounts.business import business_row
from tranche.accounts.models import Customer, TaxRate, User
from tranche.billing.models import Invoice
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project
from tranche.sales.services import LineInput, ScheduleInput, quote_create

SELLER_ADDRESS = "Harbour Build Co\n12 Quai des Chartrons\n33000 Bordeaux\nFrance"
SELLER_VAT = "FR40303265045"


def set_up_business(*, country: str = "FR", price_mode: str = "exclusive") -> None:
    row = business_row()
    row.address = SELLER_ADDRESS
    row.tax_id = SELLER_VAT
    row.country = country
    row.price_mode = price_mode
    row.bank_details = "IBAN FR76 3000 6000 0112 3456 7890 189"
    row.save()


def rate(name: str, percentage: str) -> TaxRate:
    found, _ = TaxRate.objects.get_or_create(
        name=name, defaults={"percentage": Decimal(percentage)}
    )
    return found


def address_customer(
    customer: Customer,
    *,
    address: str = "Acme Builders GmbH\nFriedrichstraße 123\n10117 Berlin",
    country: str = "DE",
    tax_id: str = "DE123456789",
    treatment: str = "standard",
) -> Customer:
    customer.address = address
    customer.country = country
    customer.tax_id = tax_id
    customer.tax_treatment = treatment
    customer.save()
    return customer


def taxed_project(
    *,
    admin: User,
    customer: Customer,
    lines: list[tuple[str, str, TaxRate | None]],
    currency: str = "USD",
    percentages: tuple[str, ...] = ("30", "70"),
    title: str = "Harbour office",
) -> Project:
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title=title,
        currency=currency,
        lines=[
            LineInput(description, Decimal(1), Decimal(amount), tax.pk if tax else None)
            for description, amount, tax in lines
        ],
        schedule=[
            ScheduleInput(f"Phase {n}", True, Decimal(p)) for n, p in enumerate(percentages, 1)
        ],
    )
    return quote_accept(actor=admin, quote_id=quote.pk)


def sent_invoice(project: Project, admin: User, position: int = 1) -> Invoice:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, position, admin).pk)
    return Invoice.objects.get(pk=sent.pk)


def brussels_project(admin: User, customer: Customer, *, treatment: str) -> Project:
    """A Belgian customer under `treatment` (reverse charge, exempt) on a project of one
    $1,000 line at VAT 20 %, the business set up to bill it."""
    set_up_business()
    address_customer(
        customer,
        address="Rue de la Loi 16\n1000 Bruxelles\nBelgium",
        country="BE",
        tax_id="BE0123456789",
        treatment=treatment,
    )
    return taxed_project(
        admin=admin, customer=customer, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
