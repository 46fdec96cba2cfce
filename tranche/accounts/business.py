"""The business's own details as every document, email and page should use them: the
settings an admin saved, each blank one falling back to its environment variable."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from tranche.accounts.models import Business


@dataclass(frozen=True)
class BusinessProfile:
    name: str
    logo_url: str  # "" when there is no logo
    logo_path: str  # the file on disk, for the PDF renderer; "" when there is none
    address: str
    tax_id: str
    sender_name: str
    reply_to: str
    payment_terms_days: int
    invoice_number_format: str
    reminder_days: tuple[int, ...]
    bank_details: str
    notify_daily_digest: bool
    notify_payment_received: bool
    notify_payment_failed: bool


def business_row() -> Business:
    """The one settings row, created empty the first time it is asked for."""
    row, _ = Business.objects.get_or_create(pk=1)
    return row


def parse_reminder_days(text: str) -> tuple[int, ...]:
    """ "-3, 0, 7" → (-3, 0, 7), sorted and without repeats. ValueError when a part is not a
    whole number."""
    return tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))


def business_profile() -> BusinessProfile:
    row = Business.objects.filter(pk=1).first() or Business(pk=1)
    return BusinessProfile(
        name=row.name or settings.BUSINESS_NAME,
        logo_url=row.logo.url if row.logo else "",
        logo_path=row.logo.path if row.logo else "",
        address=row.address,
        tax_id=row.tax_id,
        sender_name=row.sender_name or row.name or settings.BUSINESS_NAME,
        reply_to=row.reply_to,
        payment_terms_days=(
            row.payment_terms_days
            if row.payment_terms_days is not None
            else settings.DEFAULT_PAYMENT_TERMS_DAYS
        ),
        invoice_number_format=row.invoice_number_format or settings.INVOICE_NUMBER_FORMAT,
        reminder_days=(
            parse_reminder_days(row.reminder_days)
            if row.reminder_days
            else tuple(settings.REMINDER_DAYS)
        ),
        bank_details=row.bank_details or settings.BANK_DETAILS,
        notify_daily_digest=row.notify_daily_digest,
        notify_payment_received=row.notify_payment_received,
        notify_payment_failed=row.notify_payment_failed,
    )
