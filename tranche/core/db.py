"""Helpers for guarded writes: row locks, transactions required, and work after commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import models, transaction

from tranche.core.errors import NotFound

M = TypeVar("M", bound=models.Model)

# The row locks below serialise writers; none of them deletes the row or changes its key.
# So they are FOR NO KEY UPDATE on PostgreSQL (`no_key=True`), which lets another
# transaction's foreign key check on the row (FOR KEY SHARE: inserting an invoice of a
# locked project) through. A plain FOR UPDATE made that check wait, and with the totals
# trigger's per-customer advisory lock in the cycle two writers of one customer
# deadlocked (tests/billing/test_lock_order.py). SQLite has no row locks (one writer at a
# time) and ignores both.

# Primary keys are 64-bit; a larger id in a URL or body can never exist, and passing it
# to the database raises OverflowError on SQLite instead of "no such row".
MAX_ID = 2**63 - 1


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def lock_one(
    model: type[M],
    pk: int,
    *,
    not_found: str,
    code: str | None = None,
    within: models.QuerySet[M] | None = None,
) -> M:
    """Lock one row for the rest of the transaction, or raise NotFound (with `code`).
    `within`: the rows the caller may see (an access helper's queryset, its related
    rows read along but not locked); one outside them is not found either."""
    if not valid_id(pk):
        raise NotFound(not_found, code=code)
    rows = model._default_manager.select_for_update(no_key=True) if within is None else within
    if within is not None:
        rows = rows.select_for_update(of=("self",), no_key=True)
    try:
        return rows.get(pk=pk)
    except ObjectDoesNotExist:
        raise NotFound(not_found, code=code) from None


def lock_many(model: type[M], pks: Iterable[int], *, related: tuple[str, ...] = ()) -> dict[int, M]:
    """Lock many rows of one table for the rest of the transaction, in pk order (two
    writers locking overlapping sets then never wait for each other), in one query; the
    rows found by pk (a missing one is the caller's to refuse). `related` rows (foreign
    keys) come along in the same query, read but not locked."""
    wanted = sorted({pk for pk in pks if valid_id(pk)})
    if not wanted:
        return {}
    rows = model._default_manager.filter(pk__in=wanted).order_by("pk")
    if related:
        rows = rows.select_related(*related).select_for_update(of=("self",), no_key=True)
    else:
        rows = rows.select_for_update(no_key=True)
    return {row.pk: row for row in rows}


def require_atomic() -> None:
    """For a function whose writes must commit together with its caller's change (an
    audit event, an outbox email, a draft made by a completion), never on their own."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(
            "This must run inside the transaction of the change it belongs to: "
            "call it within `transaction.atomic()`."
        )


def after_commit(func: Callable[[], object]) -> None:
    """Run `func` once the current transaction commits; never if it rolls back."""
    transaction.on_commit(func, robust=True)
