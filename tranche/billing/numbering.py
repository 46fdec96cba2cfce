from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.billing.models import CreditNoteNumberSequence, InvoiceNumberSequence
from tranche.core.db import require_atomic


def _take(sequences: type[InvoiceNumberSequence | CreditNoteNumberSequence], year: int) -> int:
    """The next running number of `year` in `sequences`. Call inside the transaction that
    uses it: the year's row stays locked until it commits, and a rollback gives the
    number back."""
    require_atomic()
    try:
        with transaction.atomic():
            sequences.objects.create(year=year)
    except IntegrityError:
        pass  # the year's row exists already (perhaps created by a concurrent writer)
    sequence = sequences.objects.select_for_update().get(year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return sequence.last_number


def next_invoice_number(year: int) -> str:
    """Take the next number of `year`'s sequence, in the format the business chose, inside
    the send transaction."""
    return business_profile().invoice_number_format.format(
        year=year, seq=_take(InvoiceNumberSequence, year)
    )


def peek_invoice_number(year: int, fmt: str | None = None) -> str:
    """The number the next send of `year` would take, read without taking it (for a
    preview: a concurrent send may take it first). `fmt` is a format being tried on the
    settings page; the saved one otherwise."""
    last = (
        InvoiceNumberSequence.objects.filter(year=year)
        .values_list("last_number", flat=True)
        .first()
    )
    return (fmt or business_profile().invoice_number_format).format(year=year, seq=(last or 0) + 1)


def invoice_number_preview(fmt: str | None = None) -> str:
    """The number the next invoice sent this year would get (nothing is taken)."""
    return peek_invoice_number(timezone.localdate().year, fmt)


def next_credit_note_number(year: int) -> str:
    """Take the next number of `year`'s credit note sequence (its own, apart from the
    invoices'), in the business's credit note format. As next_invoice_number: inside the
    issuing transaction, which holds the sequence row until it commits."""
    return business_profile().credit_note_number_format.format(
        year=year, seq=_take(CreditNoteNumberSequence, year)
    )
