from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from tranche.accounts.models import Customer, PriceModeChoice, TaxRate
from tranche.core.fields import money_field
from tranche.core.money import Money
from tranche.core.trail import TrailEvent


class QuoteStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SENT = "sent", "Sent"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"


class Quote(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="quotes")
    title = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=QuoteStatus.choices, default=QuoteStatus.DRAFT)
    # The business's setting when the quote was made: whether `total` and the line prices
    # are before tax (exclusive) or include it (inclusive).
    price_mode = models.CharField(
        max_length=16, choices=PriceModeChoice.choices, default=PriceModeChoice.EXCLUSIVE
    )
    # Stored, not summed on read: the total is what the customer accepted and the project's
    # contract total is copied from it. It is the price basis (the sum of the line totals:
    # net when exclusive, gross when inclusive); tax per rate is worked out from the lines.
    total = money_field()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    # The customer's online signature: the full name they typed and the address the
    # acceptance came from (blank when staff accepted on the customer's behalf).
    accepted_name = models.CharField(max_length=200, blank=True, default="")
    accepted_ip = models.GenericIPAddressField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="quote_total_not_negative"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def price(self) -> Money:
        """The quote's total as Money in its currency (`total` is the stored Decimal)."""
        return Money(self.total, self.currency)


class PricedLine(models.Model):
    """A priced line of a contract: a quote's, or a change order's (the whole new set of
    lines of the amended contract). Each concrete line adds its document and its
    constraints."""

    position = models.PositiveIntegerField()
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    unit_price = money_field()
    line_total = money_field()
    # The rate chosen, and a copy of its name and percentage as they were (what the
    # document and its invoices use). No rate: blank name, 0 %.
    tax_rate = models.ForeignKey(
        TaxRate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    tax_name = models.CharField(max_length=100, blank=True, default="")
    tax_percentage = models.DecimalField(max_digits=5, decimal_places=2, default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.description


class QuoteLine(PricedLine):
    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="quote_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="quote_line_unit_price_not_negative"
            ),
        ]

    # In the quote's currency. Lines read through `quote.lines` (prefetched or not) know
    # their quote, so these cost no query.

    @property
    def each(self) -> Money:
        """The unit price as Money."""
        return Money(self.unit_price, self.quote.currency)

    @property
    def subtotal(self) -> Money:
        """The line total (quantity times unit price) as Money."""
        return Money(self.line_total, self.quote.currency)


class ScheduleItem(models.Model):
    """One step of the quote's payment schedule; becomes a milestone on acceptance."""

    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="schedule")
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    is_billable = models.BooleanField(default=False)
    billing_percentage = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    # A deposit: billed as soon as the quote is accepted (its milestone is completed and
    # its draft made in the acceptance's transaction). Only a billable item can be one.
    bill_on_acceptance = models.BooleanField(default=False)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(is_billable=True)
                    & Q(billing_percentage__gt=0)
                    & Q(billing_percentage__lte=100)
                )
                | (Q(is_billable=False) & Q(billing_percentage__isnull=True)),
                name="schedule_item_billing_consistent",
            ),
            models.CheckConstraint(
                condition=Q(bill_on_acceptance=False) | Q(is_billable=True),
                name="schedule_item_deposit_billable",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class QuoteEventKind(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Edited"
    SENT = "sent", "Sent to the customer"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"


class QuoteEvent(TrailEvent):
    """The quote's audit trail: who did what, when, with the details (an acceptance's
    typed name and address, a decline's reason, the address a quote was sent to)."""

    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=QuoteEventKind.choices)

    def __str__(self) -> str:
        return f"{self.kind} quote {self.quote_id}"
