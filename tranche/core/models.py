"""The one table of core: when each background job last ran."""

from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last run of a named background job: "worker" (every turn of its loop),
    "tick" (the periodic pass) and "reconcile". One row per name, overwritten; readiness
    and the Operations page read them. In core so that every app below the one running
    the job may write it."""

    name = models.CharField(max_length=50, primary_key=True)
    seen_at = models.DateTimeField()
    summary = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"{self.name} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
