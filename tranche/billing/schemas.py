from __future__ import annotations

from datetime import date, datetime
from typing import Any, Self, TypeVar

from ninja import Schema
from pydantic import Field

from tranche.billing.models import EventKind, Invoice, InvoiceEvent, InvoiceTaxLine, Payment
from tranche.billing.retainage import project_retainage
from tranche.billing.selectors import CurrencyTotals, InvoicePage, ProjectSummary, ProjectView
from tranche.core.money import ZERO, Money
from tranche.core.schemas import (
    DueDate,
    Id,
    Input,
    MoneyIn,
    OptionalText200,
    OptionalText500,
    Output,
    ReceivedOn,
    RetainagePercentage,
    Text500,
)
from tranche.core.tax_schemas import TaxLineOut, percent_api
from tranche.projects.models import Milestone
from tranche.sales.schemas import format_percentage


def _amounts(totals: ProjectSummary | CurrencyTotals, *names: str) -> dict[str, str]:
    """The named Decimal fields of a totals row, as Money in the row's currency, as the
    API writes money."""
    return {name: Money(getattr(totals, name), totals.currency).api for name in names}


S = TypeVar("S", bound=Output)


def _shaped(schema: type[S], values: dict[str, Any]) -> S:
    """`schema` built from the values it declares and no others: each shape's field list
    is its allow-list, so a customer's shape says only what its class names."""
    return schema(**{name: values[name] for name in schema.model_fields})


def _invoice_values(invoice: Invoice) -> dict[str, Any]:
    """All an invoice's JSON may say, for staff; each shape takes the fields it declares."""
    return dict(
        id=invoice.pk,
        number=invoice.number,
        status=invoice.status,
        invoice_type=invoice.invoice_type,
        project_id=invoice.project_id,
        quote_id=invoice.quote_id,
        milestone_id=invoice.milestone_id,
        currency=invoice.currency,
        amount=invoice.total.api,
        contract_amount=Money(invoice.contract_amount, invoice.currency).api,
        net_amount=Money(invoice.net_amount, invoice.currency).api,
        tax_amount=Money(invoice.tax_amount, invoice.currency).api,
        price_mode=invoice.price_mode,
        tax_treatment=invoice.tax_treatment,
        tax_note=invoice.tax_note,
        seller_tax_id=invoice.seller_tax_id,
        buyer_tax_id=invoice.buyer_tax_id,
        tax_lines=[_tax_line_out(line) for line in invoice.tax_lines.all()],
        gross_amount=invoice.gross_billed.api,
        retainage_amount=invoice.withheld.api,
        amount_paid=invoice.received.api,
        amount_credited=invoice.credited.api,
        amount_due=invoice.due.api,
        credit_owed=invoice.owed_back.api,
        description=invoice.description,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        customer_name=invoice.customer_name,
        customer_email=invoice.customer_email,
        payment_gateway=invoice.payment_gateway or None,
        payment_link=invoice.payment_link or None,
        stripe_payment_intent_id=(
            invoice.provider_reference if invoice.payment_gateway == "stripe" else None
        ),
        sent_at=invoice.sent_at,
        paid_at=invoice.paid_at,
        cancelled_at=invoice.cancelled_at,
        created_at=invoice.created_at,
        updated_at=invoice.updated_at,
    )


def _tax_line_out(line: InvoiceTaxLine) -> TaxLineOut:
    return TaxLineOut(
        name=line.name,
        percentage=percent_api(line.percentage),
        rate_percentage=percent_api(line.rate_percentage),
        net=line.net.api,
        tax=line.tax.api,
        gross=line.gross.api,
    )


def _payment_values(payment: Payment) -> dict[str, Any]:
    return dict(
        id=payment.pk,
        amount=payment.money.api,
        currency=payment.currency,
        method=payment.method,
        reference=payment.reference or None,
        provider_reference=payment.provider_reference,
        received_on=payment.received_on,
        recorded_by_id=payment.recorded_by_id,
        note=payment.note,
        credit_note_id=payment.credit_note_id,
        created_at=payment.created_at,
    )


def _milestone_values(
    milestone: Milestone, *, amount: Money, invoice_id: int | None
) -> dict[str, Any]:
    return dict(
        id=milestone.pk,
        project_id=milestone.project_id,
        title=milestone.title,
        position=milestone.position,
        status=milestone.status,
        is_billable=milestone.is_billable,
        billing_percentage=format_percentage(milestone.billing_percentage),
        bill_on_acceptance=milestone.bill_on_acceptance,
        amount=amount.api,
        planned_date=milestone.planned_date,
        actual_date=milestone.actual_date,
        completed_at=milestone.completed_at,
        completed_by_id=milestone.completed_by_id,
        invoice_id=invoice_id,
        created_at=milestone.created_at,
        updated_at=milestone.updated_at,
    )


def _project_values(view: ProjectView) -> dict[str, Any]:
    """A project's values, its milestones aside (each shape lists them in its own shape)."""
    project = view.detail.project
    billable = sum(
        (m.billing_percentage or ZERO for m in view.detail.milestones if m.is_billable), ZERO
    )
    retainage = view.retainage or project_retainage(project)
    return {
        "id": project.pk,
        "name": project.name,
        "customer_id": project.customer_id,
        "customer_name": project.customer.name,
        "origin_quote_id": project.origin_quote_id,
        "currency": project.currency,
        "contract_total": project.contract.api,
        "billable_percentage": f"{billable:.2f}",
        "waiting_for_deposit": view.waiting_for_deposit,
        "retainage_percentage": f"{project.retainage_percentage:.2f}",
        "retainage_withheld": retainage.withheld.api,
        "retainage_released": retainage.released.api,
        "retainage_held": retainage.held.api,
        "created_at": project.created_at,
    }


class InvoiceOut(Output):
    id: int
    number: str | None
    status: str
    invoice_type: str
    project_id: int
    quote_id: int | None
    milestone_id: int | None
    currency: str
    # What is asked for now: the gross billed (net_amount + tax_amount) less any
    # retainage withheld; without retainage, the gross.
    amount: str
    # The contract share billed, as the contract is priced: before tax when `price_mode`
    # is "exclusive", including it when "inclusive" (what PATCH `amount` sets on a draft).
    contract_amount: str
    net_amount: str
    tax_amount: str
    price_mode: str
    # standard, reverse_charge or exempt: the customer's treatment when it was sent (a
    # draft: when it was last taxed; it is taxed again at sending).
    tax_treatment: str
    # The legal note a 0 % invoice carries (reverse charge, exempt); blank otherwise.
    tax_note: str
    # Taken when the invoice is sent (blank on a draft): the business's and the customer's.
    seller_tax_id: str
    buyer_tax_id: str
    # Net, tax and gross per rate; they add up to net_amount, tax_amount and amount.
    tax_lines: list[TaxLineOut]
    # The gross billed (net_amount + tax_amount) and the retainage withheld from it.
    gross_amount: str
    retainage_amount: str
    amount_paid: str
    amount_credited: str
    amount_due: str
    credit_owed: str
    description: str
    issue_date: date
    due_date: date
    customer_name: str
    customer_email: str
    payment_gateway: str | None
    payment_link: str | None
    stripe_payment_intent_id: str | None
    sent_at: datetime | None
    paid_at: datetime | None
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def of(invoice: Invoice) -> InvoiceOut:
        return _shaped(InvoiceOut, _invoice_values(invoice))


class InvoiceEventOut(Output):
    kind: str
    actor_id: int | None
    actor_email: str | None
    details: dict[str, Any]
    created_at: datetime

    @staticmethod
    def of(event: InvoiceEvent) -> InvoiceEventOut:
        return InvoiceEventOut(
            kind=event.kind,
            actor_id=event.actor_id,
            actor_email=event.actor.email if event.actor else None,
            details=event.details,
            created_at=event.created_at,
        )


class PaymentOut(Output):
    id: int
    amount: str
    currency: str
    method: str
    reference: str | None  # what an admin typed for money received by hand
    provider_reference: str | None  # the PaymentIntent (or refund) the money came through
    received_on: date
    recorded_by_id: int | None
    note: str
    # A refund that also lowered what the customer owes: the credit note that did so.
    credit_note_id: int | None
    created_at: datetime

    @staticmethod
    def of(payment: Payment) -> PaymentOut:
        return _shaped(PaymentOut, _payment_values(payment))


class InvoiceDetailOut(InvoiceOut):
    payments: list[PaymentOut]
    events: list[InvoiceEventOut]


class PaymentIn(Input):
    amount: MoneyIn
    method: str = Field(min_length=1, max_length=20)
    received_on: ReceivedOn
    reference: OptionalText200 = ""
    note: OptionalText500 = ""


class PaymentRecordedOut(Output):
    payment: PaymentOut
    invoice: InvoiceOut


class ProjectSummaryOut(Output):
    currency: str
    contract_total: str
    invoiced_amount: str
    paid_amount: str
    outstanding_amount: str
    draft_amount: str
    unbilled_amount: str
    credit_owed_amount: str

    @staticmethod
    def of(summary: ProjectSummary) -> ProjectSummaryOut:
        return ProjectSummaryOut(
            currency=summary.currency,
            **_amounts(
                summary,
                "contract_total",
                "invoiced_amount",
                "paid_amount",
                "outstanding_amount",
                "draft_amount",
                "unbilled_amount",
                "credit_owed_amount",
            ),
        )


class ProjectInvoicesOut(Output):
    items: list[InvoiceOut]
    summary: ProjectSummaryOut


class CurrencyTotalsOut(Output):
    currency: str
    draft_count: int
    draft_amount: str
    outstanding_amount: str
    overdue_amount: str
    paid_amount: str
    credit_owed_amount: str

    @staticmethod
    def of(t: CurrencyTotals) -> CurrencyTotalsOut:
        return CurrencyTotalsOut(
            currency=t.currency,
            draft_count=t.draft_count,
            **_amounts(
                t,
                "draft_amount",
                "outstanding_amount",
                "overdue_amount",
                "paid_amount",
                "credit_owed_amount",
            ),
        )


class InvoicePageOut(Output):
    items: list[InvoiceOut]
    next_cursor: str | None
    totals: list[CurrencyTotalsOut]

    @staticmethod
    def of(page: InvoicePage) -> InvoicePageOut:
        return InvoicePageOut(
            items=[InvoiceOut.of(i) for i in page.items],
            next_cursor=page.next_cursor,
            totals=[CurrencyTotalsOut.of(t) for t in page.totals],
        )


class InvoiceFilters(Schema):
    status: str | None = None
    project_id: int | None = None
    customer_id: int | None = None
    limit: int = Field(25, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200)


class InvoicePatch(Input):
    amount: MoneyIn | None = None
    description: Text500 | None = None
    due_date: DueDate | None = None


class InvoiceSentOut(Output):
    message: str
    invoice: InvoiceOut


class CancelIn(Input):
    reason: Text500


BULK_SEND_MAX = 1000


class BulkSendIn(Input):
    # A bulk send claims, numbers and emails its drafts together: 1,000 take a few
    # seconds against a provider that answers at once.
    invoice_ids: list[Id] = Field(min_length=1, max_length=BULK_SEND_MAX)


class BulkSendResult(Output):
    invoice_id: int
    ok: bool
    invoice: InvoiceOut | None = None
    detail: str | None = None
    code: str | None = None


class BulkSendOut(Output):
    results: list[BulkSendResult]


class WebhookOut(Output):
    received: bool
    outcome: str


# --- what a customer sees ------------------------------------------------------------------
# Built from an allow-list, not by removing fields from the staff shapes: a field added to
# a staff shape later stays staff-only until someone decides a customer may see it. No
# notes, staff identities, provider ids or drafts (a customer is never given a draft).


class CustomerInvoiceOut(Output):
    id: int
    number: str
    status: str
    invoice_type: str
    project_id: int
    milestone_id: int | None
    currency: str
    # What is asked for now: the gross billed (net_amount + tax_amount) less any
    # retainage withheld; without retainage, the gross.
    amount: str
    # The contract share billed, as the contract is priced: before tax when `price_mode`
    # is "exclusive", including it when "inclusive" (what PATCH `amount` sets on a draft).
    contract_amount: str
    net_amount: str
    tax_amount: str
    price_mode: str
    # standard, reverse_charge or exempt: the customer's treatment when it was sent (a
    # draft: when it was last taxed; it is taxed again at sending).
    tax_treatment: str
    # The legal note a 0 % invoice carries (reverse charge, exempt); blank otherwise.
    tax_note: str
    # Taken when the invoice is sent (blank on a draft): the business's and the customer's.
    seller_tax_id: str
    buyer_tax_id: str
    # Net, tax and gross per rate; they add up to net_amount, tax_amount and amount.
    tax_lines: list[TaxLineOut]
    # The gross billed (net_amount + tax_amount) and the retainage withheld from it.
    gross_amount: str
    retainage_amount: str
    amount_paid: str
    # What credit notes took back of the amount (each is sent to the customer).
    amount_credited: str
    amount_due: str
    # Money paid beyond the amount: owed back to the customer, so theirs to see.
    credit_owed: str
    description: str
    issue_date: date
    due_date: date
    customer_name: str
    customer_email: str
    payment_link: str | None
    sent_at: datetime | None
    paid_at: datetime | None
    cancelled_at: datetime | None

    @staticmethod
    def of(invoice: Invoice) -> CustomerInvoiceOut:
        # Customers are only ever given sent invoices (see selectors.invoice_queryset).
        assert invoice.number is not None
        return _shaped(CustomerInvoiceOut, _invoice_values(invoice))


class CustomerPaymentOut(Output):
    id: int
    amount: str
    currency: str
    method: str
    received_on: date

    @staticmethod
    def of(payment: Payment) -> CustomerPaymentOut:
        return _shaped(CustomerPaymentOut, _payment_values(payment))


class CustomerInvoiceEventOut(Output):
    """One step of the invoice's history. The stored details also hold provider ids,
    webhook ids and staff-written reasons, so only these named values are taken out."""

    kind: str
    created_at: datetime
    number: str | None
    amount: str | None
    method: str | None
    status: str | None

    @staticmethod
    def of(event: InvoiceEvent) -> CustomerInvoiceEventOut:
        details = event.details

        def value(name: str, *kinds: str) -> str | None:
            found = details.get(name) if event.kind in kinds else None
            return None if found is None else str(found)

        return CustomerInvoiceEventOut(
            kind=event.kind,
            created_at=event.created_at,
            number=value("number", EventKind.SENT, EventKind.CREDITED),
            amount=value(
                "amount",
                EventKind.CREDITED,
                EventKind.PAYMENT_RECORDED,
                EventKind.PAYMENT_ON_CANCELLED_INVOICE,
                EventKind.REFUND_RECORDED,
            ),
            method=value(
                "method", EventKind.PAYMENT_RECORDED, EventKind.PAYMENT_ON_CANCELLED_INVOICE
            ),
            status=value("new", EventKind.STATUS_CHANGED),
        )


class CustomerInvoiceDetailOut(CustomerInvoiceOut):
    payments: list[CustomerPaymentOut]
    events: list[CustomerInvoiceEventOut]


class CustomerProjectSummaryOut(Output):
    """Totals over the invoices the customer was sent; what is in draft stays unsaid."""

    currency: str
    contract_total: str
    invoiced_amount: str
    paid_amount: str
    outstanding_amount: str
    credit_owed_amount: str

    @staticmethod
    def of(summary: ProjectSummary) -> CustomerProjectSummaryOut:
        return CustomerProjectSummaryOut(
            currency=summary.currency,
            **_amounts(
                summary,
                "contract_total",
                "invoiced_amount",
                "paid_amount",
                "outstanding_amount",
                "credit_owed_amount",
            ),
        )


class CustomerProjectInvoicesOut(Output):
    items: list[CustomerInvoiceOut]
    summary: CustomerProjectSummaryOut


class CustomerCurrencyTotalsOut(Output):
    currency: str
    outstanding_amount: str
    overdue_amount: str
    paid_amount: str
    credit_owed_amount: str

    @staticmethod
    def of(t: CurrencyTotals) -> CustomerCurrencyTotalsOut:
        return CustomerCurrencyTotalsOut(
            currency=t.currency,
            **_amounts(
                t,
                "outstanding_amount",
                "overdue_amount",
                "paid_amount",
                "credit_owed_amount",
            ),
        )


class CustomerInvoicePageOut(Output):
    items: list[CustomerInvoiceOut]
    next_cursor: str | None
    totals: list[CustomerCurrencyTotalsOut]

    @staticmethod
    def of(page: InvoicePage) -> CustomerInvoicePageOut:
        return CustomerInvoicePageOut(
            items=[CustomerInvoiceOut.of(i) for i in page.items],
            next_cursor=page.next_cursor,
            totals=[CustomerCurrencyTotalsOut.of(t) for t in page.totals],
        )


# --- projects as the portal shows them: each milestone with its invoice ---------------------


# Customers' project shapes are allow-listed like their invoice shapes: no staff
# identities (completed_by_id), no internal bookkeeping, and a milestone's invoice id only
# when its invoice was sent to them (ProjectView.invoices is scoped to the viewer). The
# staff shape is the customer's plus the internal fields, so a field added to a customer's
# shape reaches staff too, never the other way round.


class CustomerMilestoneOut(Output):
    id: int
    project_id: int
    title: str
    position: int
    status: str
    is_billable: bool
    billing_percentage: str | None
    bill_on_acceptance: bool
    amount: str
    planned_date: date | None
    actual_date: date | None
    completed_at: datetime | None
    invoice_id: int | None

    @classmethod
    def of(cls, milestone: Milestone, *, amount: Money, invoice_id: int | None) -> Self:
        return _shaped(cls, _milestone_values(milestone, amount=amount, invoice_id=invoice_id))


class MilestoneOut(CustomerMilestoneOut):
    completed_by_id: int | None
    created_at: datetime
    updated_at: datetime


M = TypeVar("M", bound=CustomerMilestoneOut)


def _milestones_out(view: ProjectView, shape: type[M]) -> list[M]:
    return [
        shape.of(m, amount=view.detail.amount_of(m), invoice_id=view.invoices.get(m.pk))
        for m in view.detail.milestones
    ]


def milestones_out(view: ProjectView) -> list[MilestoneOut]:
    return _milestones_out(view, MilestoneOut)


def customer_milestones_out(view: ProjectView) -> list[CustomerMilestoneOut]:
    return _milestones_out(view, CustomerMilestoneOut)


class ProjectOut(Output):
    id: int
    name: str
    customer_id: int
    customer_name: str
    origin_quote_id: int | None
    currency: str
    contract_total: str
    billable_percentage: str
    waiting_for_deposit: bool
    retainage_percentage: str
    # Withheld on live milestone invoices (drafts included), released on live release
    # invoices, and held: withheld less released.
    retainage_withheld: str
    retainage_released: str
    retainage_held: str
    created_at: datetime
    milestones: list[MilestoneOut]

    @staticmethod
    def of(view: ProjectView) -> ProjectOut:
        return _shaped(ProjectOut, {**_project_values(view), "milestones": milestones_out(view)})


class ProjectPage(Output):
    items: list[ProjectOut]
    count: int


class MilestoneList(Output):
    items: list[MilestoneOut]


class CustomerProjectOut(Output):
    id: int
    name: str
    customer_id: int
    customer_name: str
    currency: str
    contract_total: str
    waiting_for_deposit: bool
    retainage_percentage: str
    created_at: datetime
    milestones: list[CustomerMilestoneOut]

    @staticmethod
    def of(view: ProjectView) -> CustomerProjectOut:
        values = {**_project_values(view), "milestones": customer_milestones_out(view)}
        return _shaped(CustomerProjectOut, values)


class CustomerProjectPage(Output):
    items: list[CustomerProjectOut]
    count: int


class CustomerMilestoneList(Output):
    items: list[CustomerMilestoneOut]


# --- milestone completion and quote acceptance (billing composes projects and invoices) ---


class CompletionOut(Output):
    message: str
    milestone: MilestoneOut
    draft_invoice: InvoiceOut | None


class AcceptOut(Output):
    project: ProjectOut
    # The deposits' invoices made by the acceptance (drafts, or sent if the business
    # sends deposit invoices automatically and sending worked).
    deposit_invoices: list[InvoiceOut] = Field(default_factory=list)


class ProjectPatch(Input):
    retainage_percentage: RetainagePercentage
