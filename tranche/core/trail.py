"""The fields every audit trail shares: who (none for Tranche itself), when, and the
values of the moment. Each trail adds what it is about and its own kinds of event."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TrailEvent(models.Model):
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True
        ordering = ["at", "id"]
