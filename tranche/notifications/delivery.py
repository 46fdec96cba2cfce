"""Delivery of queued emails: the code that talks to SMTP.

Delivery claims a row in a short transaction, talks to SMTP with no lock held, then
records the outcome. A failed attempt is retried later with exponential backoff by
`outbox_deliver_due`, which the worker runs periodically. The `deliver_email` task and
the periodic pass call these; queueing lives in `notifications.services`."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from tranche.notifications.attachments import AttachmentUnavailable, render_attachment
from tranche.notifications.models import OutboxEmail, OutboxStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
# An attachment that cannot be made is retried this many attempts (about three minutes,
# with the backoff); then the email leaves without it. The email itself (the amount, the
# due date, the pay link) matters more than its PDF, which the pay page offers too: a
# broken renderer (no pango on the worker) must not keep every invoice from reaching its
# customer. What was left out is logged and written on the row's last_error.
ATTACHMENT_ATTEMPTS = 3
# A claim older than this belongs to a worker that died mid-send; the row is retried.
CLAIM_TIMEOUT = timedelta(minutes=5)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, capped at 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def message_id(email: OutboxEmail) -> str:
    """One Message-ID per outbox row, the same on every attempt. Delivery is at least
    once: a worker that dies after the server kept the message but before it said so
    sends it again, and the recipient's mail client recognises the copy by this id."""
    digest = hashlib.sha256(f"{email.pk}:{email.key}".encode()).hexdigest()[:16]
    domain = urlsplit(settings.BASE_URL).hostname or "localhost"
    return f"<tranche.outbox.{email.pk}.{digest}@{domain}>"


def _claim(email_id: int, now: datetime) -> OutboxEmail | None:
    with transaction.atomic():
        email = OutboxEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.status in (OutboxStatus.SENT, OutboxStatus.FAILED):
            return None
        if (
            email.status == OutboxStatus.SENDING
            and email.claimed_at
            and now - email.claimed_at < CLAIM_TIMEOUT
        ):
            return None
        if email.next_attempt_at > now:
            return None
        email.status = OutboxStatus.SENDING
        email.claimed_at = now
        email.attempts += 1
        email.save(update_fields=["status", "claimed_at", "attempts"])
    return email


def outbox_deliver(*, email_id: int, now: datetime | None = None) -> bool:
    """Try to send one queued email now. True when it was sent by this call."""
    now = now or timezone.now()
    email = _claim(email_id, now)
    if email is None:
        return False
    message = EmailMultiAlternatives(
        email.subject,
        email.body_text,
        from_email=email.from_email or None,
        to=[email.to],
        reply_to=[email.reply_to] if email.reply_to else None,
        headers={"Message-ID": message_id(email)},
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    left_out: list[str] = []
    for spec in email.attachments or []:
        try:
            made = render_attachment(spec)
        except AttachmentUnavailable as exc:
            if email.attempts < ATTACHMENT_ATTEMPTS:
                _retry_later(email, now, f"Attachment not made: {exc}")
                logger.warning("Email %s waits: attachment not made: %s", email.pk, exc)
                return False
            left_out.append(str(exc))
            continue
        message.attach(made.filename, made.content, made.mimetype)
    if left_out:
        logger.error("Email %s goes without its attachment(s): %s", email.pk, "; ".join(left_out))
    try:
        message.send()
    except Exception as exc:  # SMTP refused, timed out, connection dropped …
        failed = email.attempts >= MAX_ATTEMPTS
        OutboxEmail.objects.filter(pk=email.pk).update(
            status=OutboxStatus.FAILED if failed else OutboxStatus.PENDING,
            claimed_at=None,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=now + backoff(email.attempts),
        )
        logger.warning(
            "Email %s to %s failed (attempt %s): %s", email.pk, email.to, email.attempts, exc
        )
        return False
    OutboxEmail.objects.filter(pk=email.pk).update(
        status=OutboxStatus.SENT,
        sent_at=now,
        claimed_at=None,
        last_error=f"Sent without: {'; '.join(left_out)}"[:2000] if left_out else "",
    )
    logger.info("Email %s (%s) sent", email.pk, email.kind)
    return True


def _retry_later(email: OutboxEmail, now: datetime, error: str) -> None:
    OutboxEmail.objects.filter(pk=email.pk).update(
        status=OutboxStatus.PENDING,
        claimed_at=None,
        last_error=error[:2000],
        next_attempt_at=now + backoff(email.attempts),
    )


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int  # raised something other than an SMTP failure; logged, left for later


def outbox_deliver_due_report(*, now: datetime | None = None, limit: int = 100) -> DeliveryReport:
    """Send every email whose next attempt is due. Each email is isolated: one that
    raises is logged and counted, and the others still go out."""
    now = now or timezone.now()
    due = OutboxEmail.objects.filter(
        status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING], next_attempt_at__lte=now
    ).values_list("pk", flat=True)[:limit]
    sent = failed = 0
    for pk in list(due):
        try:
            sent += outbox_deliver(email_id=pk, now=now)
        except Exception:
            logger.exception("Could not deliver outbox email %s", pk)
            failed += 1
    return DeliveryReport(sent=sent, failed=failed)


def outbox_deliver_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Send every email whose next attempt is due; returns how many were sent."""
    return outbox_deliver_due_report(now=now, limit=limit).sent
