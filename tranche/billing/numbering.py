from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from tranche.billing.models import InvoiceNumberSequence
from tranche.core.db import require_atomic


def next_invoice_number(year: int) -> str:
    """Take the next number of `year`'s sequence. Call inside the send transaction: the
    sequence row stays locked until it commits, and a rollback gives the number back."""
    require_atomic()
    try:
        with transaction.atomic():
            InvoiceNumberSequence.objects.create(year=year)
    except IntegrityError:
        pass  # the year's row exists already (perhaps created by a concurrent send)
    sequence = InvoiceNumberSequence.objects.select_for_update().get(year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return settings.INVOICE_NUMBER_FORMAT.format(year=year, seq=sequence.last_number)


def peek_invoice_number(year: int) -> str:
    """The number the next send of `year` would take, read without taking it (for a
    preview: a concurrent send may take it first)."""
    sequence = InvoiceNumberSequence.objects.filter(year=year)
    last = sequence.values_list("last_number", flat=True).first()
    return settings.INVOICE_NUMBER_FORMAT.format(year=year, seq=(last or 0) + 1)
