"""Delivery of queued emails: the code that talks to SMTP.

Delivery claims a batch of due rows in a short transaction, talks to SMTP with no lock
held (one connection for the batch), and records each email's outcome as soon as it is
known. A failed attempt is retried later with exponential backoff. The `deliver_email`
task, the worker's sweep and the periodic pass call `outbox_deliver_due`; queueing lives
in `notifications.services`."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import F, Q
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
# Emails claimed at once and sent over one SMTP connection: a new connection per email
# (TCP, EHLO, TLS, login) cost more than the message itself.
BATCH_SIZE = 50
# A batch stops sending after this long and gives back what it has not sent, well inside
# CLAIM_TIMEOUT: no email it holds may be taken for a dead worker's and sent twice.
BATCH_SECONDS = CLAIM_TIMEOUT.total_seconds() / 3


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


def _claim_batch(now: datetime, limit: int) -> list[OutboxEmail]:
    """Claim up to `limit` due emails in one short transaction: first those claimed by a
    worker that died mid-send (the claim is older than CLAIM_TIMEOUT), then those waiting
    for their attempt, oldest due first. Each look reads the rows it claims through an
    index (see OutboxEmail.Meta), not the sent ones before them. On PostgreSQL the rows
    another worker is claiming at this moment are skipped, not waited for; SQLite has one
    writer (its transactions take the write lock when they start), so claims queue."""
    with transaction.atomic():
        due = OutboxEmail.objects.select_for_update(skip_locked=True).filter(
            next_attempt_at__lte=now
        )
        emails = list(
            due.filter(status=OutboxStatus.SENDING)
            .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lte=now - CLAIM_TIMEOUT))
            .order_by("pk")[:limit]
        )
        if len(emails) < limit:
            emails += due.filter(status=OutboxStatus.PENDING).order_by("next_attempt_at", "pk")[
                : limit - len(emails)
            ]
        if emails:
            OutboxEmail.objects.filter(pk__in=[email.pk for email in emails]).update(
                status=OutboxStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
            )
    for email in emails:
        email.status = OutboxStatus.SENDING
        email.claimed_at = now
        email.attempts += 1
    return emails


def _message(email: OutboxEmail, now: datetime) -> tuple[EmailMultiAlternatives, list[str]] | None:
    """The message to send and the attachments it goes without, or None when it waits for
    an attachment that could not be made (the row is already given its retry)."""
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
                return None
            left_out.append(str(exc))
            continue
        message.attach(made.filename, made.content, made.mimetype)
    if left_out:
        logger.error("Email %s goes without its attachment(s): %s", email.pk, "; ".join(left_out))
    return message, left_out


_FIELDS = {field.name: field for field in OutboxEmail._meta.concrete_fields}


def _record(email: OutboxEmail, **outcome: Any) -> None:
    """Write an email's outcome under the caller's claim, without waiting for the disk.

    On PostgreSQL the commit returns before its WAL reaches the disk (for this one
    statement): a flush per email cost more than sending it. The outcome is committed
    and seen by everyone at once; only a crash of the database server in the next
    fraction of a second could lose it, leaving the email claimed, so it would be sent
    again once its claim times out, with the same Message-ID, as after a worker killed
    mid-send. The claim itself is flushed as usual: no email is sent by two workers at
    once."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        OutboxEmail.objects.filter(pk=email.pk).update(**outcome)
        return
    fields = [_FIELDS[name] for name in outcome]
    assignments = ", ".join(f"{connection.ops.quote_name(f.attname)} = %s" for f in fields)
    values = [f.get_db_prep_save(outcome[f.name], connection) for f in fields]
    table = connection.ops.quote_name(OutboxEmail._meta.db_table)
    # One round trip: the statements of one query string run as one transaction, to which
    # SET LOCAL applies. Names come from the model, values are bound.
    update = f"UPDATE {table} SET {assignments} WHERE id = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL synchronous_commit TO OFF; {update}", [*values, email.pk])


def _failed(email: OutboxEmail, now: datetime, exc: BaseException) -> None:
    failed = email.attempts >= MAX_ATTEMPTS
    _record(
        email,
        status=OutboxStatus.FAILED if failed else OutboxStatus.PENDING,
        claimed_at=None,
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
        next_attempt_at=now + backoff(email.attempts),
    )
    logger.warning(
        "Email %s to %s failed (attempt %s): %s", email.pk, email.to, email.attempts, exc
    )


def _sent(email: OutboxEmail, now: datetime, left_out: list[str]) -> None:
    _record(
        email,
        status=OutboxStatus.SENT,
        sent_at=now,
        claimed_at=None,
        last_error=f"Sent without: {'; '.join(left_out)}"[:2000] if left_out else "",
    )
    logger.info("Email %s (%s) sent", email.pk, email.kind)


def _retry_later(email: OutboxEmail, now: datetime, error: str) -> None:
    _record(
        email,
        status=OutboxStatus.PENDING,
        claimed_at=None,
        last_error=error[:2000],
        next_attempt_at=now + backoff(email.attempts),
    )


def _give_back(emails: list[OutboxEmail], now: datetime) -> None:
    """Emails claimed and not tried: due again at once, their attempt not counted."""
    OutboxEmail.objects.filter(
        pk__in=[email.pk for email in emails], status=OutboxStatus.SENDING, claimed_at=now
    ).update(status=OutboxStatus.PENDING, claimed_at=None, attempts=F("attempts") - 1)


def _still_usable(exc: Exception) -> bool:
    """Whether the connection can carry the next email after this failure: the server
    refused this message (a recipient, the sender, the data) and smtplib reset the
    transaction. Anything else (a drop, a timeout, 421 "closing") gets a new connection."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code != 421


def _close(connection: BaseEmailBackend) -> None:
    try:
        connection.close()
    except Exception:  # a dead connection may fail its QUIT; it is dropped either way
        logger.debug("Closing the SMTP connection failed", exc_info=True)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int  # raised something other than an SMTP failure; logged, left for later
    claimed: int = 0


def _send_batch(emails: list[OutboxEmail], now: datetime) -> DeliveryReport:
    """Send claimed emails over one SMTP connection, each on its own: a message the
    server refuses is that email's failed attempt (the connection goes on), one that
    breaks the connection is that email's failed attempt (the next one opens a new
    connection), and one that raises anything else is logged and counted. Each outcome
    is written as soon as it is known, so a worker killed mid-batch re-sends at most the
    message it was sending (with the same Message-ID)."""
    sent = failed = 0
    started = time.monotonic()
    connection: BaseEmailBackend | None = None
    # The connection could not be opened: the rest of the batch fails with the same
    # error, without waiting for the server again (each email backs off as if tried).
    unreachable: Exception | None = None
    try:
        for index, email in enumerate(emails):
            if time.monotonic() - started > BATCH_SECONDS:
                # A slow server: what is left goes back before its claim could expire
                # while this worker still holds it.
                _give_back(emails[index:], now)
                break
            try:
                if unreachable is not None:
                    _failed(email, now, unreachable)
                    continue
                made = _message(email, now)
                if made is None:
                    continue
                message, left_out = made
                if connection is None:
                    connection = get_connection()
                    try:
                        connection.open()
                    except Exception as exc:
                        connection = None
                        unreachable = exc
                        _failed(email, now, exc)
                        continue
                message.connection = connection
                try:
                    message.send()
                except Exception as exc:  # refused, timed out, dropped, TLS …
                    _failed(email, now, exc)
                    if not _still_usable(exc):
                        _close(connection)
                        connection = None
                    continue
                _sent(email, now, left_out)
                sent += 1
            except Exception:
                logger.exception("Could not deliver outbox email %s", email.pk)
                failed += 1
                with contextlib.suppress(Exception):  # else its claim times out
                    _retry_later(email, now, "Delivery raised; see the worker's log")
    finally:
        if connection is not None:
            _close(connection)
    return DeliveryReport(sent=sent, failed=failed, claimed=len(emails))


def outbox_deliver_due_report(
    *,
    now: datetime | None = None,
    limit: int = 100,
    more_due: Callable[[], object] | None = None,
) -> DeliveryReport:
    """Send up to `limit` emails whose next attempt is due, in batches of BATCH_SIZE, each
    over one SMTP connection. Each email is isolated: one that raises is logged and
    counted, and the others still go out. `more_due` is called whenever a batch comes
    back full (more emails may be waiting), so another worker can share them."""
    sent = failed = claimed = 0
    while claimed < limit:
        # A fresh time per batch unless the caller fixed it: a claim stamped with a time
        # long past would look expired to other workers while this one still sends.
        batch_now = now or timezone.now()
        size = min(BATCH_SIZE, limit - claimed)
        try:
            batch = _claim_batch(batch_now, size)
        except Exception:
            logger.exception("Could not claim due outbox emails")
            failed += 1
            break
        if not batch:
            break
        if more_due is not None and len(batch) == size:
            try:
                more_due()
            except Exception:  # the sweep and the next task deliver them anyway
                logger.exception("Could not ask for more delivery")
        report = _send_batch(batch, batch_now)
        sent += report.sent
        failed += report.failed
        claimed += len(batch)
    return DeliveryReport(sent=sent, failed=failed, claimed=claimed)


def outbox_deliver_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Send every email whose next attempt is due; returns how many were sent."""
    return outbox_deliver_due_report(now=now, limit=limit).sent
