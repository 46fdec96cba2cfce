"""The periodic pass over sent invoices: mark the overdue ones and remind customers.

Safe to run as often as you like: each invoice is re-checked under its row lock, and a
reminder step's outbox key (invoice, step) lets it out at most once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, DateField, Exists, F, Func, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat, TruncDate
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.locks import lock_invoice
from tranche.billing.models import (
    OPEN_STATUSES,
    Invoice,
    InvoiceStatus,
)
from tranche.billing.rules import require_open_with_email, status_for
from tranche.billing.services.emails import address_to_current_billing_email, queue_invoice_email
from tranche.core.errors import Conflict
from tranche.notifications.models import OutboxEmail

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickReport:
    marked_overdue: int
    reminders_queued: int
    failed: int = 0


def _shifted(day: date, days: int) -> date:
    """`day` moved by `days`, held at the calendar's ends instead of overflowing: a due
    date near 9999-12-31 (stored before dates were bounded) must not stop the pass."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def _step_due(
    sent_at: datetime | None, due_date: date, today: date, steps: tuple[int, ...]
) -> int | None:
    """The latest reminder step (of `steps`, the business's reminder days) whose day has
    come, if it should go out today.

    A step is never sent on the day the invoice was sent, nor when its day came before
    the invoice was sent; a step missed (the tick did not run) is replaced by the next."""
    sent_day = timezone.localdate(sent_at) if sent_at else today
    if today <= sent_day:
        return None
    reached = [d for d in steps if _shifted(due_date, d) <= today]
    if not reached:
        return None
    step = reached[-1]
    return step if _shifted(due_date, step) > sent_day else None


def _describe(step: int) -> str:
    if step < 0:
        return f"is due in {-step} day{'s' if step != -1 else ''}"
    if step == 0:
        return "is due today"
    return f"is {step} day{'s' if step != 1 else ''} overdue"


def invoices_tick(*, now: datetime | None = None) -> TickReport:
    """Each invoice is handled on its own: one that raises is logged and counted, and the
    pass goes on with the others (a corrupt row must not stop everyone's reminders).

    The database finds the invoices that have something due (an overdue mark, a reminder
    step not yet in the outbox), so a pass costs what is due, not what is open."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    # Read once per pass: the whole pass follows one schedule even if an admin saves
    # new reminder steps while it runs.
    steps = business_profile().reminder_days
    overdue = queued = failed = 0
    late = Invoice.objects.filter(
        status__in=[InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID], due_date__lt=today
    ).values_list("pk", flat=True)
    for invoice_id in list(late):
        try:
            overdue += _mark_overdue(invoice_id, today=today, now=now)
        except Exception:
            logger.exception("Could not mark invoice %s overdue", invoice_id)
            failed += 1

    for candidate_id in _reminders_due(today=today, steps=steps):
        try:
            queued += _remind(candidate_id, today=today, now=now, steps=steps)
        except Exception:
            logger.exception("Could not queue a reminder for invoice %s", candidate_id)
            failed += 1
    return TickReport(marked_overdue=overdue, reminders_queued=queued, failed=failed)


class _PlusDays(Func):
    """A date column moved by a whole number of days, as a date on both vendors (Django's
    own date + timedelta is a datetime string on SQLite, which compares wrongly with a
    date on the day itself)."""

    arg_joiner = " + "
    template = "(%(expressions)s)"
    output_field = DateField()

    def __init__(self, column: str, days: int) -> None:
        super().__init__(F(column), Value(days))
        self.days = days

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[str | int, ...]]:
        shifted = Func(
            self.source_expressions[0],
            Value(f"{self.days:+d} days"),
            function="date",
            output_field=DateField(),
        )
        return shifted.as_sql(compiler, connection)


def _reminders_due(*, today: date, steps: tuple[int, ...]) -> list[int]:
    """The open invoices whose latest reached step (see `_step_due`) is not in the outbox
    yet: one query per step, each over the due dates for which that step is the latest
    reached, less those sent on or after the step's day, less those the outbox already
    holds that step's key for. Only the schedule's columns are read: no money column, so
    a corrupt amount fails its own item in `_remind`, not this query. `_remind` checks
    again under the row lock; the outbox key still lets a step out once if two passes
    race."""
    due: list[int] = []
    open_invoices = Invoice.objects.filter(status__in=OPEN_STATUSES).annotate(
        sent_day=TruncDate("sent_at", tzinfo=timezone.get_current_timezone())
    )
    for position, step in enumerate(steps):
        window = Q(due_date__lte=_shifted(today, -step))
        if position + 1 < len(steps):
            window &= Q(due_date__gt=_shifted(today, -steps[position + 1]))
        queued = OutboxEmail.objects.filter(
            key=Concat(
                Value("invoice:"),
                Cast(OuterRef("pk"), CharField()),
                Value(f":invoice_reminder:{step}"),
                output_field=CharField(),
            )
        )
        due += (
            open_invoices.filter(window, sent_day__lt=_PlusDays("due_date", step))
            .exclude(Exists(queued))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    return due


def _mark_overdue(invoice_id: int, *, today: date, now: datetime) -> bool:
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        if (
            invoice.status not in (InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID)
            or status_for(invoice, today) != InvoiceStatus.OVERDUE
        ):
            return False
        before = invoice.status
        invoice.status = InvoiceStatus.OVERDUE
        invoice.updated_at = now
        invoice.save(update_fields=["status", "updated_at"])
        record_event(
            invoice, EventKind.STATUS_CHANGED, actor=None, now=now, old=before, new=invoice.status
        )
    return True


def _remind(invoice_id: int, *, today: date, now: datetime, steps: tuple[int, ...]) -> bool:
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        step = _step_due(invoice.sent_at, invoice.due_date, today, steps)
        if invoice.status not in OPEN_STATUSES or invoice.amount_due <= 0 or step is None:
            return False
        # False when this step went out before: it is counted once, not at every tick.
        return queue_invoice_email(
            invoice, "invoice_reminder", now=now, step=str(step), when=_describe(step)
        )


def invoice_remind_now(*, actor: User, invoice_id: int, now: datetime | None = None) -> Invoice:
    """Send the customer the reminder email today, whatever the schedule says: at most
    one a day per invoice (the outbox key holds the day), so a double click or a second
    admin cannot send two."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        address_to_current_billing_email(invoice, now=now)
        require_open_with_email(invoice, action="reminded", refused="no reminder can be sent")
        days = (today - invoice.due_date).days
        if not queue_invoice_email(
            invoice,
            "invoice_reminder",
            now=now,
            step=f"now-{today.isoformat()}",
            when=_describe(days),
        ):
            raise Conflict(
                f"A reminder of {invoice} was already sent today; the next one can go tomorrow.",
                code="reminder_already_sent_today",
            )
        record_event(
            invoice, EventKind.REMINDER_SENT, actor=actor, now=now, to=invoice.customer_email
        )
    return invoice
