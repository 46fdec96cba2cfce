from __future__ import annotations

from django.db import models
from django.db.models import Q


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboxEmail(models.Model):
    """An email written in the same transaction as the change it reports.

    It leaves only after that transaction commits; `key` is unique, so the same event
    can never queue the same email twice."""

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=50)
    to = models.EmailField()
    subject = models.CharField(max_length=300)
    body_text = models.TextField()
    body_html = models.TextField(blank=True, default="")
    # Who it is from and where replies go, as the business's settings said when it was
    # written (blank: Django's DEFAULT_FROM_EMAIL, no Reply-To).
    from_email = models.CharField(max_length=300, blank=True, default="")
    reply_to = models.EmailField(blank=True, default="")
    # What to attach, made at delivery time by the renderer registered for each kind
    # (see `notifications.attachments`): [{"kind": "invoice_pdf", "invoice_id": 7}].
    attachments = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            # Delivery claims the oldest due emails in this order: the index hands them
            # over without sorting, however many share a time or were sent before.
            models.Index(fields=["status", "next_attempt_at", "id"], name="outbox_due"),
            # Emails claimed by a worker that died mid-send, found by the claim's age.
            # Only claims older than the timeout are read, not the many fresh ones that
            # a burst of delivery leaves behind until vacuum.
            models.Index(
                fields=["claimed_at"],
                condition=Q(status="sending"),
                name="outbox_claimed_while_sending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to} ({self.status})"
