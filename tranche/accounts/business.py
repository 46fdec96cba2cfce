"""The business's own details as every document, email and page should use them: the
settings an admin saved, each blank one falling back to its environment variable.

`business_profile()` is the one read path: numbering, reminders, emails, documents and
pages all ask it, never `settings.BUSINESS_NAME` and friends directly. `business_update`
is the one write."""

from __future__ import annotations

import functools
import io
import logging
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from tranche.accounts.access import require_admin
from tranche.accounts.models import Business, User
from tranche.core.db import after_commit
from tranche.core.errors import Invalid

logger = logging.getLogger(__name__)

LOGO_MAX_BYTES = 1024 * 1024
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg"}
LOGO_MAX_PIXELS = 4000  # per side: a logo, not a photograph
REMINDER_RANGE = (-60, 365)
REMINDER_MAX_STEPS = 10
NUMBER_MAX_LENGTH = 64  # Invoice.number holds this much
DEFAULT_REVERSE_CHARGE_NOTE = (
    "Reverse charge: the customer accounts for the VAT (Article 196, Council Directive "
    "2006/112/EC)."
)
DEFAULT_TAX_EXEMPT_NOTE = "Exempt from tax."
DEFAULT_CREDIT_NOTE_NUMBER_FORMAT = "CN-{year}-{seq:05d}"


@dataclass(frozen=True)
class BusinessProfile:
    name: str
    logo_url: str  # a path on this site ("/branding/logo/…"); "" when there is no logo
    # The file's name in the configured storage (a shared folder or a bucket, STORAGES),
    # read through `logo_open`; "" when there is none.
    logo_name: str
    address: str
    tax_id: str
    sender_name: str
    reply_to: str
    payment_terms_days: int
    invoice_number_format: str
    credit_note_number_format: str
    reminder_days: tuple[int, ...]
    bank_details: str
    notify_daily_digest: bool
    notify_payment_received: bool
    notify_payment_failed: bool
    country: str
    price_mode: str  # "exclusive" or "inclusive" (core.tax.PriceMode)
    reverse_charge_note: str
    tax_exempt_note: str
    send_deposits_automatically: bool

    @property
    def logo_absolute_url(self) -> str:
        """The logo as an email client fetches it: from BASE_URL."""
        return f"{settings.BASE_URL}{self.logo_url}" if self.logo_url else ""

    @property
    def from_email(self) -> str:
        """`Sender Name <address>`: the name from the settings, the address from
        DEFAULT_FROM_EMAIL (the mail server is configured for that address, not another)."""
        from email.utils import formataddr, parseaddr

        address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
        return formataddr((self.sender_name, address))


def business_row() -> Business:
    """The one settings row, created empty the first time it is asked for."""
    row, _ = Business.objects.get_or_create(pk=1)
    return row


def parse_reminder_days(text: str) -> tuple[int, ...]:
    """ "-3, 0, 7" → (-3, 0, 7), sorted and without repeats. ValueError when a part is not a
    whole number."""
    return tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))


def logo_url_of(row: Business) -> str:
    # The file name is random and changes with every upload, so the address can be cached
    # for ever: a new logo is a new address.
    return f"/branding/logo/{Path(row.logo.name or '').name}" if row.logo else ""


def logo_open(name: str) -> File[bytes]:
    """The logo file `name` (a BusinessProfile's logo_name), opened for reading from the
    storage uploads go to: never a path on this machine's disk, so a bucket works too."""
    return Business._meta.get_field("logo").storage.open(name, "rb")


def business_profile() -> BusinessProfile:
    row = Business.objects.filter(pk=1).first() or Business(pk=1)
    return BusinessProfile(
        name=row.name or settings.BUSINESS_NAME,
        logo_url=logo_url_of(row),
        logo_name=(row.logo.name or "") if row.logo else "",
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
        credit_note_number_format=(
            row.credit_note_number_format or DEFAULT_CREDIT_NOTE_NUMBER_FORMAT
        ),
        reminder_days=(
            parse_reminder_days(row.reminder_days)
            if row.reminder_days
            else tuple(settings.REMINDER_DAYS)
        ),
        bank_details=row.bank_details or settings.BANK_DETAILS,
        notify_daily_digest=row.notify_daily_digest,
        notify_payment_received=row.notify_payment_received,
        notify_payment_failed=row.notify_payment_failed,
        country=row.country,
        price_mode=row.price_mode,
        reverse_charge_note=row.reverse_charge_note or DEFAULT_REVERSE_CHARGE_NOTE,
        tax_exempt_note=row.tax_exempt_note or DEFAULT_TAX_EXEMPT_NOTE,
        send_deposits_automatically=row.send_deposits_automatically,
    )


# --- validation ----------------------------------------------------------------------------


class BusinessInvalid(Invalid):
    """One or more settings are refused; `errors` maps each field to its sentence."""

    code = "business_invalid"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        first = next(iter(errors.values()))
        more = len(errors) - 1
        detail = first if not more else f"{first} (and {more} more field(s) to correct)"
        super().__init__(detail)


FORBIDDEN_IN_NUMBERS = frozenset("\"'\\\x7f")


def number_format_problem(fmt: str, what: str = "invoice") -> str | None:
    """Why `fmt` cannot number invoices, or None. It must hold {seq} (the running number)
    and {year} (numbers restart every year: without the year, next January's INV-00001
    would collide with this year's), and nothing else in braces. The number names files
    and appears in headers and documents: no control characters, quotes or backslashes
    (a slash, as in INV/2026/00001, is fine: file names replace it). `what` names the
    document the format numbers ("invoice", "credit note")."""
    example = "CN-{year}-{seq:05d}" if what == "credit note" else "INV-{year}-{seq:05d}"
    if any(ord(c) < 32 or c in FORBIDDEN_IN_NUMBERS for c in fmt):
        return f"The {what} number format may not contain line breaks, tabs, quotes or backslashes."
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
    except ValueError as exc:
        return f"The {what} number format is not valid: {exc}. Example: {example}."
    unknown = sorted(n or "{}" for n in names - {"year", "seq"})
    if unknown:
        return (
            f"The {what} number format may only use {{year}} and {{seq}}, not {', '.join(unknown)}."
        )
    if "seq" not in names:
        return (
            f"The {what} number format must contain {{seq}}, the running number (e.g. {{seq:05d}})."
        )
    if "year" not in names:
        return (
            f"The {what} number format must contain {{year}}: numbers restart every year, so "
            "without it they would repeat."
        )
    try:
        longest = fmt.format(year=9999, seq=9_999_999)
        fmt.format(year=2026, seq=1)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        return f"The {what} number format is not valid: {exc}. Example: {example}."
    if len(longest) > NUMBER_MAX_LENGTH:
        return (
            f"{what.capitalize()} numbers made with this format would be longer than "
            f"{NUMBER_MAX_LENGTH} characters."
        )
    return None


def reminder_days_problem(text: str) -> str | None:
    try:
        days = parse_reminder_days(text)
    except ValueError:
        return (
            "Reminder steps must be whole numbers of days separated by commas, e.g. -3, 0, 7, 14."
        )
    low, high = REMINDER_RANGE
    if any(not low <= d <= high for d in days):
        return f"Each reminder step must be between {low} and {high} days from the due date."
    if len(days) > REMINDER_MAX_STEPS:
        return f"At most {REMINDER_MAX_STEPS} reminder steps."
    return None


def _email_problem(email: str) -> str | None:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    try:
        validate_email(email)
    except ValidationError:
        return f"{email!r} is not an email address."
    domain = email.rpartition("@")[2]
    if domain.startswith("[") or "." not in domain.strip("."):
        return f"{email!r} is not an email address."
    return None


def logo_problem(upload: UploadedFile[Any]) -> tuple[str | None, bytes, str]:
    """(problem, content, extension). Pillow reads the file: the name and the browser's
    content type say nothing about what is inside."""
    from PIL import Image, UnidentifiedImageError

    if upload.size is not None and upload.size > LOGO_MAX_BYTES:
        return "The logo must be at most 1 MB.", b"", ""
    content = upload.read(LOGO_MAX_BYTES + 1)
    if len(content) > LOGO_MAX_BYTES:
        return "The logo must be at most 1 MB.", b"", ""
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind = image.format or ""
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "The logo must be a PNG or JPEG image; this file is not one.", b"", ""
    if kind not in LOGO_FORMATS:
        return f"The logo must be a PNG or JPEG image, not {kind}.", b"", ""
    if width > LOGO_MAX_PIXELS or height > LOGO_MAX_PIXELS:
        return f"The logo must be at most {LOGO_MAX_PIXELS} pixels wide and high.", b"", ""
    return None, content, LOGO_FORMATS[kind]


@dataclass
class _Changes:
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def _text(changes: _Changes, name: str, value: str, limit: int, label: str) -> None:
    value = value.strip()
    if len(value) > limit:
        changes.errors[name] = f"{label} must be at most {limit} characters."
    changes.values[name] = value


def business_update(
    *,
    actor: User,
    name: str,
    address: str,
    tax_id: str,
    sender_name: str,
    reply_to: str,
    payment_terms_days: int | None,
    invoice_number_format: str,
    reminder_days: str,
    bank_details: str,
    notify_daily_digest: bool,
    notify_payment_received: bool,
    notify_payment_failed: bool,
    logo: UploadedFile[Any] | None = None,
    remove_logo: bool = False,
    credit_note_number_format: str | None = None,
) -> Business:
    """Save the business's settings. Every field is checked before anything is written;
    all problems are raised together (`BusinessInvalid.errors`, one sentence per field).
    A blank text field means "use the environment's default"."""
    require_admin(actor)
    changes = _Changes()
    _text(changes, "name", name, 200, "The business name")
    _text(changes, "address", address, 1000, "The address")
    _text(changes, "tax_id", tax_id, 64, "The tax id")
    _text(changes, "sender_name", sender_name, 200, "The sender name")
    _text(changes, "bank_details", bank_details, 2000, "The bank-transfer details")
    if any(ch in changes.values["sender_name"] for ch in '\r\n<>"'):
        changes.errors["sender_name"] = 'The sender name cannot contain line breaks, <, > or ".'
    reply_to = reply_to.strip().lower()
    if reply_to and (problem := _email_problem(reply_to)):
        changes.errors["reply_to"] = problem
    changes.values["reply_to"] = reply_to
    if payment_terms_days is not None and not 0 <= payment_terms_days <= 365:
        changes.errors["payment_terms_days"] = "Payment terms must be between 0 and 365 days."
    changes.values["payment_terms_days"] = payment_terms_days
    invoice_number_format = invoice_number_format.strip()
    if invoice_number_format and (problem := number_format_problem(invoice_number_format)):
        changes.errors["invoice_number_format"] = problem
    changes.values["invoice_number_format"] = invoice_number_format
    if credit_note_number_format is not None:  # None: leave it as it is
        credit_note_number_format = credit_note_number_format.strip()
        if credit_note_number_format and (
            problem := number_format_problem(credit_note_number_format, "credit note")
        ):
            changes.errors["credit_note_number_format"] = problem
        changes.values["credit_note_number_format"] = credit_note_number_format
    reminder_days = reminder_days.strip()
    if reminder_days and (problem := reminder_days_problem(reminder_days)):
        changes.errors["reminder_days"] = problem
    elif reminder_days:
        reminder_days = ", ".join(str(d) for d in parse_reminder_days(reminder_days))
    changes.values["reminder_days"] = reminder_days
    changes.values["notify_daily_digest"] = notify_daily_digest
    changes.values["notify_payment_received"] = notify_payment_received
    changes.values["notify_payment_failed"] = notify_payment_failed
    content, extension = b"", ""
    if logo is not None:
        problem, content, extension = logo_problem(logo)
        if problem:
            changes.errors["logo"] = problem
    if changes.errors:
        raise BusinessInvalid(changes.errors)

    written = ""
    try:
        with transaction.atomic():
            business_row()  # exists before it is locked
            row = Business.objects.select_for_update().get(pk=1)
            old_logo = row.logo.name if row.logo else ""
            for key, value in changes.values.items():
                setattr(row, key, value)
            if content:
                row.logo.save(
                    f"logo-{secrets.token_hex(8)}.{extension}", ContentFile(content), save=False
                )
                written = row.logo.name or ""
            elif remove_logo:
                row.logo = ""
            row.save()
            new_logo = row.logo.name if row.logo else ""
            if old_logo and old_logo != new_logo:
                # Only once the new row is committed: a rollback keeps the old file in use.
                after_commit(lambda: row.logo.storage.delete(old_logo))
    except Exception:
        if written:  # the row that would have named it was rolled back
            Business._meta.get_field("logo").storage.delete(written)
        raise
    logger.info("Business settings changed by %s", actor.email)
    return row


# --- tax settings --------------------------------------------------------------------------

# Territory codes the CLDR lists that are not assigned in ISO 3166-1 alpha-2 (regions,
# pseudo-locales, and the exceptionally reserved codes e-invoice validators refuse).
_NOT_COUNTRIES = frozenset(
    {"EU", "EZ", "UN", "QO", "XA", "XB", "XK", "ZZ", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}
)


@functools.cache
def countries() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code → English name, sorted by name (babel's CLDR data)."""
    from babel import Locale

    names = Locale("en").territories
    found = {
        code: str(name)
        for code, name in names.items()
        if len(code) == 2 and code.isalpha() and code.isupper() and code not in _NOT_COUNTRIES
    }
    return dict(sorted(found.items(), key=lambda item: item[1]))


def country_problem(code: str) -> str | None:
    """Why `code` (already upper-cased) is not an ISO 3166-1 alpha-2 country, or None."""
    if code in countries():
        return None
    return f"{code!r} is not a country code; use the two letters of ISO 3166-1 (e.g. DE, FR, US)."


def clean_country(code: str) -> str:
    return code.strip().upper()


NOTE_MAX_LENGTH = 500


def business_tax_update(
    *,
    actor: User,
    price_mode: str,
    reverse_charge_note: str,
    tax_exempt_note: str,
    country: str,
    send_deposits_automatically: bool,
) -> Business:
    """Save the tax settings (admins). All problems are raised together, as in
    `business_update`; a blank note means "the default wording". A new price mode applies
    to quotes made from now on: each quote keeps the mode it was made with."""
    from tranche.core.tax import PriceMode

    require_admin(actor)
    changes = _Changes()
    if price_mode not in {mode.value for mode in PriceMode}:
        changes.errors["price_mode"] = "Prices are either “exclusive” or “inclusive” of tax."
    changes.values["price_mode"] = price_mode
    _text(changes, "reverse_charge_note", reverse_charge_note, NOTE_MAX_LENGTH, "The note")
    _text(changes, "tax_exempt_note", tax_exempt_note, NOTE_MAX_LENGTH, "The note")
    country = clean_country(country)
    if country and (problem := country_problem(country)):
        changes.errors["country"] = problem
    changes.values["country"] = country
    changes.values["send_deposits_automatically"] = send_deposits_automatically
    if changes.errors:
        raise BusinessInvalid(changes.errors)
    with transaction.atomic():
        business_row()
        row = Business.objects.select_for_update().get(pk=1)
        for key, value in changes.values.items():
            setattr(row, key, value)
        row.save(update_fields=[*changes.values, "updated_at"])
    logger.info("Tax settings changed by %s", actor.email)
    return row
