from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from tranche.accounts.models import Customer, PriceModeChoice
from tranche.core.fields import money_field
from tranche.core.money import Money


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
