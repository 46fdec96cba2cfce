from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from tranche.accounts.models import Customer, PriceModeChoice
from tranche.core.fields import money_field
from tranche.core.money import Money
from tranche.core.trail import TrailEvent
from tranche.sales.models import PricedLine


class Project(models.Model):
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="projects")
    # One project per quote, enforced here: a second acceptance racing the first fails on
    # this constraint instead of creating a twin project.
    origin_quote = models.OneToOneField(
        "sales.Quote", on_delete=models.PROTECT, null=True, blank=True, related_name="project"
    )
    currency = models.CharField(max_length=3)
    # The contract's price basis (net when exclusive, gross when inclusive, as the quote
    # was priced) in total and per tax rate: [{"name", "percentage", "amount"}] as strings,
    # in the order the rates first appear on the quote. The amounts add up to the total.
    contract_total = money_field()
    contract_bases = models.JSONField(default=list, blank=True)
    price_mode = models.CharField(
        max_length=16, choices=PriceModeChoice.choices, default=PriceModeChoice.EXCLUSIVE
    )
    # 1 is the accepted quote; each approved change order makes the next version.
    contract_version = models.PositiveIntegerField(default=1)
    # The share of each milestone invoice's gross withheld until the work is done, in
    # percent (0 <= p < 100). Read when an invoice is made: changing it leaves the invoices
    # already made as they are.
    retainage_percentage = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(retainage_percentage__gte=0) & Q(retainage_percentage__lt=100),
                name="project_retainage_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def contract(self) -> Money:
        """The contract total as Money in the project's currency."""
        return Money(self.contract_total, self.currency)


class MilestoneStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    COMPLETED = "completed", "Completed"


class Milestone(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="milestones")
    title = models.CharField(max_length=200)
    position = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=MilestoneStatus.choices, default=MilestoneStatus.PENDING
    )
    is_billable = models.BooleanField(default=False)
    billing_percentage = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    # A deposit, copied from its schedule item: completed and billed at acceptance.
    bill_on_acceptance = models.BooleanField(default=False)
    planned_date = models.DateField(null=True, blank=True)
    actual_date = models.DateField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Set by an approved change order: the milestone's share of the contract per rate
    # ([{"name", "percentage", "amount"}]), which percentages can no longer express once
    # some milestones were invoiced under an older version. None: its percentage decides.
    contract_shares = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

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
                name="milestone_billing_consistent",
            ),
            models.CheckConstraint(
                condition=Q(bill_on_acceptance=False) | Q(is_billable=True),
                name="milestone_deposit_billable",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ChangeOrderStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SENT = "sent", "Sent"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"


class ChangeOrder(models.Model):
    """An amendment of a project's contract: the whole new set of contract lines and the
    changes to the milestones not yet invoiced. Approved, it makes the next version."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="change_orders")
    number = models.PositiveIntegerField()  # CO-1, CO-2, … within the project
    status = models.CharField(
        max_length=16, choices=ChangeOrderStatus.choices, default=ChangeOrderStatus.DRAFT
    )
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The customer's online signature; blank when staff recorded the approval for them.
    approved_name = models.CharField(max_length=200, blank=True, default="")
    approved_ip = models.GenericIPAddressField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True, default="")
    # The contract version the approval made, and the contract before and after it (the
    # preview as it was approved: the history reads it, never recomputes it).
    contract_version = models.PositiveIntegerField(null=True, blank=True)
    approved_preview = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["project", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "number"], name="change_order_number_per_project"
            ),
            models.UniqueConstraint(
                fields=["project", "contract_version"],
                condition=Q(contract_version__isnull=False),
                name="change_order_one_per_version",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return f"CO-{self.number}"


class ChangeOrderLine(PricedLine):
    change_order = models.ForeignKey(ChangeOrder, on_delete=models.CASCADE, related_name="lines")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="change_order_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="change_order_line_unit_price_not_negative"
            ),
        ]


class ChangeOrderItem(models.Model):
    """A change to the schedule: a milestone not yet invoiced (new title, billable,
    percentage, or removed), or a new milestone (no `milestone`)."""

    change_order = models.ForeignKey(
        ChangeOrder, on_delete=models.CASCADE, related_name="schedule_items"
    )
    position = models.PositiveIntegerField()
    milestone = models.ForeignKey(
        Milestone, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=200)
    is_billable = models.BooleanField(default=False)
    billing_percentage = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    remove = models.BooleanField(default=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title


class ChangeOrderEventKind(models.TextChoices):
    CREATED = "created", "Created"
    EDITED = "edited", "Edited"
    SENT = "sent", "Sent to the customer"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"


class ChangeOrderEvent(TrailEvent):
    change_order = models.ForeignKey(ChangeOrder, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=ChangeOrderEventKind.choices)

    def __str__(self) -> str:
        return f"{self.kind} {self.change_order_id}"


class ProjectEventKind(models.TextChoices):
    RETAINAGE_CHANGED = "retainage_changed", "Retainage changed"


class ProjectEvent(TrailEvent):
    """The audit trail of a project's own terms (its invoices and change orders keep
    theirs): who changed what, when, with the values before and after in `details`."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=ProjectEventKind.choices)

    def __str__(self) -> str:
        return f"{self.kind} {self.project_id}"
