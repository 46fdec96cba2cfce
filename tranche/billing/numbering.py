from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.billing.models import CreditNoteNumberSequence, InvoiceNumberSequence
from tranche.core.db import require_atomic


def _take(
    sequences: type[InvoiceNumberSequence | CreditNoteNumberSequence], year: int, count: int = 1
) -> int:
    """Take the next `count` running numbers of `year` in `sequences`; returns the last of
    them. Call inside the transaction that uses them: the year's row stays locked until
    it commits, and a rollback gives the numbers back."""
    require_atomic()
    taken = _increment(sequences, year, count)
    if taken is None:
        # The first number of the year: make the row (a concurrent first send may make
        # it first; its unique year then refuses ours and we wait for its lock below).
        try:
            with transaction.atomic():
                sequences.objects.create(year=year)
        except IntegrityError:
            pass
        taken = _increment(sequences, year, count)
        assert taken is not None, f"the {year} row of {sequences.__name__} vanished"
    return taken


def _increment(
    sequences: type[InvoiceNumberSequence | CreditNoteNumberSequence], year: int, count: int
) -> int | None:
    """Add `count` to the year's row and read it back in one statement (None when the year
    has no row yet). The UPDATE takes the row's lock (the whole database's write lock on
    SQLite), held until the caller's transaction ends: the next writer waits and reads
    our number, so the numbers have no gaps and no repeats. Every send but a year's first
    takes this path alone, never an INSERT that the unique year refuses."""
    table = connection.ops.quote_name(sequences._meta.db_table)
    with connection.cursor() as cursor:
        # RETURNING: PostgreSQL, and SQLite since 3.35.
        cursor.execute(
            f"UPDATE {table} SET last_number = last_number + %s WHERE year = %s "  # noqa: S608
            "RETURNING last_number",
            [count, year],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def next_invoice_number(year: int) -> str:
    """Take the next number of `year`'s sequence, in the format the business chose, inside
    the send transaction."""
    return take_invoice_numbers(year, 1)[0]


def take_invoice_numbers(year: int, count: int, *, fmt: str | None = None) -> list[str]:
    """Take the next `count` numbers of `year`'s sequence at once (a bulk send numbers its
    drafts together, in the order given), in the format the business chose (`fmt`, when
    the caller read the business profile already), inside the send transaction."""
    last = _take(InvoiceNumberSequence, year, count)  # count 0: only the row's lock
    if not count:
        return []
    fmt = fmt or business_profile().invoice_number_format
    return [fmt.format(year=year, seq=seq) for seq in range(last - count + 1, last + 1)]


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
