"""Sent emails' bodies are dropped after the retention (settings RETENTION_EMAIL_BODY_DAYS):
what the outbox row says about the email (to whom, which subject and kind, its key, when
it left) stays, so the history and the no-second-email guarantee of `key` survive."""

from __future__ import annotations

from datetime import datetime

from tranche.notifications.models import OutboxEmail, OutboxStatus


def outbox_bodies_purge(*, sent_before: datetime, limit: int) -> int:
    """Blank the bodies and attachments of at most `limit` emails sent before
    `sent_before`, oldest first; returns how many. One short UPDATE: a first run on a
    large outbox takes several passes instead of one long lock."""
    kept = (
        OutboxEmail.objects.filter(status=OutboxStatus.SENT, sent_at__lt=sent_before)
        .exclude(body_text="", body_html="", attachments=[])
        .order_by("sent_at", "pk")
    )
    ids = list(kept.values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    return OutboxEmail.objects.filter(
        pk__in=ids, status=OutboxStatus.SENT, sent_at__lt=sent_before
    ).update(body_text="", body_html="", attachments=[])
