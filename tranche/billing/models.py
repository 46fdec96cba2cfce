from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from tranche.core.fields import money_field
from tranche.core.money import ZERO, Money
from tranche.core.tax import tax_caption


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    OVERDUE = "overdue", "Overdue"
    # Sent, and its whole amount taken back by credit notes (never shown as paid).
    CREDITED = "credited", "Credited"
    CANCELLED = "cancelled", "Cancelled"


SENT_STATUSES = (
    InvoiceStatus.PENDING,
    InvoiceStatus.PARTIALLY_PAID,
    InvoiceStatus.PAID,
    InvoiceStatus.OVERDUE,
    InvoiceStatus.CREDITED,
)
OPEN_STATUSES = (InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE)


class InvoiceType(models.TextChoices):
    MILESTONE = "milestone", "Milestone"
    # The retainage withheld on the project's milestone invoices, billed back at the end
    # (or earlier, if staff release it). Its tax was charged on the milestone invoices.
    RETAINAGE_RELEASE = "retainage_release", "Retainage release"


class Invoice(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.PROTECT, related_name="invoices"
    )
    quote = models.ForeignKey(
        "sales.Quote", on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    milestone = models.ForeignKey(
        "projects.Milestone",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invoices",
    )
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, related_name="invoices"
    )
    # Drafts have no number: it is taken from the gap-free sequence when the invoice is sent.
    number = models.CharField(max_length=64, unique=True, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT
    )
    invoice_type = models.CharField(
        max_length=24, choices=InvoiceType.choices, default=InvoiceType.MILESTONE
    )
    currency = models.CharField(max_length=3)
    # What the invoice asks for now: the gross, tax included (see `tax_lines`), less the
    # retainage withheld. Payments, Stripe and bank transfers all use this.
    amount = money_field()
    # The project's retainage percentage when the invoice was made, and the part of the
    # gross it withholds (see billing.retainage).
    retainage_percentage = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    retainage_amount = money_field(default=Decimal(0))
    amount_paid = money_field(default=Decimal(0))
    # The sum of its credit notes' gross: what the customer no longer owes. Never more
    # than `amount` (a constraint), and only ever raised by credit_note_issue.
    amount_credited = money_field(default=Decimal(0))
    # The share of the contract's price basis this invoice bills (net when the contract
    # is priced tax-exclusive, gross when inclusive): what counts against the contract.
    contract_amount = money_field(default=Decimal(0))
    net_amount = money_field(default=Decimal(0))
    tax_amount = money_field(default=Decimal(0))
    price_mode = models.CharField(max_length=16, default="exclusive")
    # The customer's treatment when the invoice was made or sent; reverse charge and
    # exempt charge 0 % and print `tax_note`.
    tax_treatment = models.CharField(max_length=16, default="standard")
    tax_note = models.CharField(max_length=500, blank=True, default="")
    # Both parties' tax ids as they were when the invoice was sent (drafts show today's).
    seller_tax_id = models.CharField(max_length=64, blank=True, default="")
    buyer_tax_id = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=500)
    issue_date = models.DateField()
    due_date = models.DateField()
    # An admin's own due date survives sending; otherwise sending sets today + terms.
    due_date_fixed = models.BooleanField(default=False)
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(blank=True, default="")

    payment_gateway = models.CharField(max_length=16, blank=True, default="")
    # The Stripe PaymentIntent id, or the sandbox's reference.
    provider_reference = models.CharField(max_length=255, unique=True, null=True, blank=True)
    pay_token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    payment_link = models.URLField(max_length=500, blank=True, default="")
    # Set while a send is talking to the payment provider, so a second send is refused
    # without holding a row lock across the provider call.
    send_claimed_at = models.DateTimeField(null=True, blank=True)
    # Set with a change of the amount due that the PaymentIntent must follow (a transfer,
    # a refund), cleared once the intent was brought in step: the periodic pass retries
    # until then, so a provider outage at that moment cannot leave the old amount payable.
    intent_out_of_step = models.BooleanField(default=False)

    sent_at = models.DateTimeField(null=True, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancel_reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One live invoice per milestone: concurrent completions race on this index,
            # and the loser finds the winner's invoice instead of making a second one.
            models.UniqueConstraint(
                fields=["milestone"],
                condition=Q(milestone__isnull=False) & ~Q(status=InvoiceStatus.CANCELLED),
                name="invoice_one_live_per_milestone",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_amount_positive"),
            models.CheckConstraint(
                condition=Q(retainage_amount__gte=0), name="invoice_retainage_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(amount_credited__gte=0) & Q(amount_credited__lte=F("amount")),
                name="invoice_credit_within_amount",
            ),
            models.CheckConstraint(
                condition=(Q(status=InvoiceStatus.DRAFT) & Q(number__isnull=True))
                | (Q(status__in=SENT_STATUSES) & Q(number__isnull=False))
                | Q(status=InvoiceStatus.CANCELLED),
                name="invoice_number_iff_sent",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_date"]),
            models.Index(fields=["customer", "-id"]),
            # The financials list's orders (issue date by default, due date) and the API's
            # status filter newest first: read in index order and stopped after a page,
            # instead of sorting every invoice for each page.
            models.Index(fields=["-issue_date", "-id"], name="invoice_issue_date_id"),
            models.Index(fields=["due_date", "id"], name="invoice_due_date_id"),
            models.Index(fields=["status", "-id"], name="invoice_status_id"),
            # The periodic pass looks for the few intents left out of step at every run;
            # without this it reads the whole table to find none.
            models.Index(
                fields=["id"],
                condition=Q(intent_out_of_step=True),
                name="invoice_intent_out_of_step",
            ),
            # The staff dashboard's "to do first": the most overdue open invoices and the
            # oldest drafts, read in index order and stopped after five.
            models.Index(
                fields=["due_date", "id"],
                condition=Q(status__in=OPEN_STATUSES),
                name="invoice_open_by_due_date",
            ),
            models.Index(
                fields=["created_at", "id"],
                condition=Q(status=InvoiceStatus.DRAFT),
                name="invoice_draft_by_age",
            ),
            # Its 12-month chart: what was invoiced by issue date, from the index alone
            # (key columns rather than INCLUDE, which SQLite lacks).
            models.Index(
                fields=["issue_date", "currency", "amount"],
                condition=Q(number__isnull=False) & ~Q(status=InvoiceStatus.CANCELLED),
                name="invoice_issued_amounts",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft invoice {self.pk}"

    @property
    def amount_due(self) -> Decimal:
        """What the customer still has to pay; never negative (see credit_owed), and
        nothing once the invoice is cancelled: a cancelled invoice asks for no money."""
        if self.status == InvoiceStatus.CANCELLED:
            return ZERO
        return max(self.amount - self.amount_credited - self.amount_paid, ZERO)

    @property
    def credit_owed(self) -> Decimal:
        """Money received beyond what the invoice asks for (a customer who paid twice, or
        paid an invoice that was then cancelled or credited): the business owes it back."""
        owed = (
            self.amount_paid
            if self.status == InvoiceStatus.CANCELLED
            else (self.amount_paid - (self.amount - self.amount_credited))
        )
        return max(owed, ZERO)

    # The amounts as Money in the invoice's currency, for everything that shows or
    # serialises them (`{{ invoice.due }}`, `invoice.due.api`). Not named `paid` or
    # `credit`: the financial totals annotate invoice rows with those names.

    @property
    def total(self) -> Money:
        """`amount`, what the invoice asks for."""
        return Money(self.amount, self.currency)

    @property
    def tax_total(self) -> Money:
        """`tax_amount`, the tax the total includes."""
        return Money(self.tax_amount, self.currency)

    @property
    def gross_amount(self) -> Decimal:
        """The gross billed (its tax lines' gross): what it asks for plus what it withholds."""
        return self.amount + self.retainage_amount

    @property
    def gross_billed(self) -> Money:
        """`gross_amount` as Money."""
        return Money(self.gross_amount, self.currency)

    @property
    def withheld(self) -> Money:
        """`retainage_amount` as Money."""
        return Money(self.retainage_amount, self.currency)

    @property
    def received(self) -> Money:
        """`amount_paid`, the sum of its payments (less refunds)."""
        return Money(self.amount_paid, self.currency)

    @property
    def credited(self) -> Money:
        """`amount_credited`, what its credit notes took back."""
        return Money(self.amount_credited, self.currency)

    @property
    def creditable(self) -> Money:
        """What credit notes may still take back: the amount less what was credited."""
        return Money(self.amount - self.amount_credited, self.currency)

    @property
    def due(self) -> Money:
        """`amount_due`."""
        return Money(self.amount_due, self.currency)

    @property
    def owed_back(self) -> Money:
        """`credit_owed`."""
        return Money(self.credit_owed, self.currency)


class InvoiceTotals(models.Model):
    """What the invoices of one customer, in one currency and status, sent or not, add
    up to: the financials totals read these few rows instead of every invoice.

    Written only by the database's triggers on billing_invoice (migration 0012), in the
    transaction of whatever changed an invoice (a service, a bulk update, raw SQL), so
    it is never behind. Sums are integer thousandths of the currency unit (the money
    columns' precision): exact on SQLite too, where decimals are summed as floats.
    `amount_due` and `credit_owed` are `selectors.AMOUNT_DUE` and `CREDIT_OWED` summed
    row by row. A key whose invoices are all gone keeps its row, at zero."""

    # No foreign key: the triggers must not lock or check the customer's row.
    customer_id = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    # number IS NOT NULL: what a customer user may see (a cancelled draft never was).
    sent = models.BooleanField()
    count = models.BigIntegerField(default=0)
    amount = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    amount_due = models.BigIntegerField(default=0)
    credit_owed = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "currency", "status", "sent"], name="invoice_totals_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.count} {self.status} {self.currency} invoices of customer {self.customer_id}"


class TaxLineFields(models.Model):
    """One tax rate of one document (an invoice or a credit note): its net, tax and gross
    (see core.tax for the rule). `rate_percentage` is the contract's rate; `percentage`
    what was charged (0 when the customer is reverse charge or exempt). A document's
    lines add up to its figures."""

    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100, blank=True, default="")
    rate_percentage = models.DecimalField(max_digits=5, decimal_places=2)
    percentage = models.DecimalField(max_digits=5, decimal_places=2)
    net_amount = money_field()
    tax_amount = money_field()
    gross_amount = money_field()

    class Meta:
        abstract = True

    @property
    def currency(self) -> str:  # pragma: no cover - each document names its own
        raise NotImplementedError

    @property
    def label(self) -> str:
        """The rate's name, or "No tax" for lines quoted without a rate."""
        return self.name or "No tax"

    @property
    def caption(self) -> str:
        """ "VAT 20 %", "VAT 20 %, charged 0 %" … (see core.tax.tax_caption)."""
        return tax_caption(self.name, self.rate_percentage, self.percentage)

    @property
    def net(self) -> Money:
        return Money(self.net_amount, self.currency)

    @property
    def tax(self) -> Money:
        return Money(self.tax_amount, self.currency)

    @property
    def gross(self) -> Money:
        return Money(self.gross_amount, self.currency)


class InvoiceTaxLine(TaxLineFields):
    """One tax rate of one invoice (see TaxLineFields)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="tax_lines")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="tax_line_position"),
        ]

    def __str__(self) -> str:
        return f"{self.label} on invoice {self.invoice_id}"

    @property
    def currency(self) -> str:
        return self.invoice.currency


class InvoiceNumberSequence(models.Model):
    """The last number handed out per calendar year. Its row is locked by the send
    transaction, so numbers are unique, gap-free and in the order invoices were sent."""

    year = models.PositiveIntegerField(unique=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class EventKind(models.TextChoices):
    CREATED = "created", "Draft created"
    EDITED = "edited", "Draft edited"
    SEND_FAILED = "send_failed", "Sending failed"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"
    PAYMENT_RECORDED = "payment_recorded", "Payment recorded"
    PAYMENT_ON_CANCELLED_INVOICE = "payment_on_cancelled_invoice", "Paid after cancelling"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    REFUND_RECORDED = "refund_recorded", "Refund recorded"
    STATUS_CHANGED = "status_changed", "Status changed"
    CREDIT_OWED = "credit_owed", "Credit owed to the customer"
    # We changed or cancelled the PaymentIntent (the amount due changed) …
    INTENT_AMOUNT_CHANGED = "intent_amount_changed", "Online amount changed"
    INTENT_CANCELLED = "intent_cancelled", "Online payment withdrawn"
    # … or the provider told us it was cancelled (Stripe spells it "canceled").
    INTENT_CANCELED_AT_PROVIDER = "intent_canceled", "Online payment cancelled at the provider"
    # Emails staff asked for by hand (the automatic ones are part of the change they report).
    EMAIL_RESENT = "email_resent", "Invoice email sent again"
    REMINDER_SENT = "reminder_sent", "Reminder sent"
    CREDITED = "credited", "Credit note issued"
    CREDIT_NOTE_EMAILED = "credit_note_emailed", "Credit note emailed"


class InvoiceEvent(models.Model):
    """The audit trail: who did what to an invoice, and when."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on invoice {self.invoice_id}"


class PaymentMethod(models.TextChoices):
    STRIPE = "stripe", "Card (online)"
    SANDBOX = "sandbox", "Card (sandbox)"
    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    CASH = "cash", "Cash"
    CHECK = "check", "Check"
    OTHER = "other", "Other"


MANUAL_METHODS = (
    PaymentMethod.BANK_TRANSFER,
    PaymentMethod.CASH,
    PaymentMethod.CHECK,
    PaymentMethod.OTHER,
)


class Payment(models.Model):
    """Money in (or, negative, a refund out). An invoice's amount_paid is their sum."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = money_field()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=16, choices=PaymentMethod.choices)
    # The provider's identity of this money (a PaymentIntent that succeeded, a refund), set
    # only by the settlement path. Unique, so the same provider outcome is recorded once
    # however many events report it.
    provider_reference = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # What an admin typed for money received by hand (a bank reference, a check number).
    # Free text, never unique across invoices and never a provider identity: a reference
    # that happens to look like a PaymentIntent id must not block that intent's payment.
    reference = models.CharField(max_length=200, blank=True, default="")
    received_on = models.DateField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True, default="")
    # A refund that also lowered what the customer owes points to the credit note that
    # did so (see credit_note_issue); a plain refund of an overpayment has none.
    credit_note = models.ForeignKey(
        "billing.CreditNote",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="payment_amount_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on invoice {self.invoice_id}"

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class StripeEvent(models.Model):
    """Every verified webhook event, stored once (its id is unique) before it is acted on.
    One that cannot be settled yet (its invoice is not visible, its payment not recorded)
    stays unprocessed and is retried by the worker."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["processed_at", "received_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class CreditNoteKind(models.TextChoices):
    FULL = "full", "Full"
    PARTIAL = "partial", "Partial"


class CreditNote(models.Model):
    """A correction of a sent invoice: it takes back `amount` (gross) of what the invoice
    asked for, per tax rate (`tax_lines`). Issued at once with its own gap-free yearly
    number; never edited or deleted. The invoice itself never changes except for
    `amount_credited` (see services/crediting.py)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, related_name="credit_notes"
    )
    number = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=CreditNoteKind.choices)
    currency = models.CharField(max_length=3)
    amount = money_field()
    net_amount = money_field()
    tax_amount = money_field()
    reason = models.CharField(max_length=500)
    issue_date = models.DateField()
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(blank=True, default="")
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # When the email carrying it was queued ("" address: none was sent).
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_note_amount_positive"),
        ]
        indexes = [models.Index(fields=["customer", "-id"])]

    def __str__(self) -> str:
        return self.number

    @property
    def total(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def net(self) -> Money:
        return Money(self.net_amount, self.currency)

    @property
    def tax(self) -> Money:
        return Money(self.tax_amount, self.currency)


class CreditNoteTaxLine(TaxLineFields):
    """One tax rate of one credit note (see TaxLineFields)."""

    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="tax_lines")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_note", "position"], name="credit_note_tax_line_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} on credit note {self.credit_note_id}"

    @property
    def currency(self) -> str:
        return self.credit_note.currency


class CreditNoteNumberSequence(models.Model):
    """The last credit note number handed out per calendar year (as InvoiceNumberSequence:
    locked by the issuing transaction, so gap-free and in issuing order)."""

    year = models.PositiveIntegerField(unique=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"
