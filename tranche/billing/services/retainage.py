"""Retainage writes: the release invoice (made when the last billable milestone is
completed, or when staff release early), and keeping held (withheld less released) at
zero or more whenever a milestone invoice's retainage changes (reopened, edited,
cancelled, retaxed at sending).

Every function that changes a release runs with the project row locked (the caller's
or its own), so two releases of one project cannot both bill the same held amount."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.locks import lock_invoice
from tranche.billing.models import Invoice, InvoiceStatus, InvoiceType
from tranche.billing.retainage import RELEASE_LINE_NAME, project_retainage
from tranche.billing.services.cancelled import mark_cancelled
from tranche.billing.taxes import apply_tax, write_tax_lines
from tranche.core.db import require_atomic
from tranche.core.errors import Conflict
from tranche.core.money import ZERO, Money
from tranche.core.tax import TaxRate
from tranche.projects.locks import lock_project
from tranche.projects.models import Milestone, MilestoneStatus, Project

RELEASE_RATE = TaxRate(RELEASE_LINE_NAME, ZERO)


def _create_release(
    *, actor: User | None, project: Project, amount: Money, now: datetime, early: bool
) -> Invoice:
    require_atomic()
    customer = project.customer
    today = timezone.localdate(now)
    invoice = Invoice(
        project=project,
        quote_id=project.origin_quote_id,
        milestone=None,
        customer=customer,
        invoice_type=InvoiceType.RETAINAGE_RELEASE,
        currency=project.currency,
        description=f"Release of retainage: {project.name}"[:500],
        issue_date=today,
        due_date=today + timedelta(days=customer.payment_terms_days),
        customer_name=customer.name,
        customer_email=customer.billing_email,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    # One 0 % line: the tax was charged on the milestone invoices that withheld it.
    tax = apply_tax(invoice, {RELEASE_RATE: amount}, mode=project.price_mode, customer=customer)
    invoice.save(force_insert=True)
    write_tax_lines(invoice, tax)
    record_event(
        invoice,
        EventKind.CREATED,
        actor=actor,
        now=now,
        retainage_release=str(invoice.amount),
        early=early,
    )
    return invoice


def release_when_finished(
    *, actor: User, project: Project, milestones: list[Milestone], now: datetime
) -> Invoice | None:
    """After a billable milestone was completed (project locked): once every billable
    milestone is completed, a release draft for exactly what is held. Nothing when
    nothing is held."""
    require_atomic()
    billable = [m for m in milestones if m.is_billable]
    if not billable or any(m.status != MilestoneStatus.COMPLETED for m in billable):
        return None
    held = project_retainage(project).held
    if held.amount <= 0:
        return None
    return _create_release(actor=actor, project=project, amount=held, now=now, early=False)


def _draft_releases(project: Project) -> list[Invoice]:
    ids = Invoice.objects.filter(
        project=project,
        invoice_type=InvoiceType.RETAINAGE_RELEASE,
        status=InvoiceStatus.DRAFT,
    ).values_list("pk", flat=True)
    return [lock_invoice(pk) for pk in sorted(ids)]


def resettle_releases(
    *, actor: User | None, project: Project, now: datetime, reason: str, remake: bool
) -> Invoice | None:
    """A milestone invoice's retainage went down or away (project locked): draft releases
    are cancelled, and with `remake` one new draft bills what is then held. If releases
    already sent bill more than is still withheld, the change is refused (the caller's
    transaction rolls back): retainage never goes below zero."""
    require_atomic()
    drafts = _draft_releases(project)
    for draft in drafts:
        mark_cancelled(draft, actor=actor, reason=reason, now=now)
    held = project_retainage(project).held
    if held.amount < 0:
        raise Conflict(
            f"Retainage of {Money(-held.amount, held.currency)} more than is still withheld "
            "was already released on a sent invoice; cancel that release invoice first.",
            code="retainage_already_released",
        )
    if drafts and remake and held.amount > 0:
        return _create_release(actor=actor, project=project, amount=held, now=now, early=False)
    return None


def retainage_cancel_refusal(invoice: Invoice) -> Conflict | None:
    """Why cancelling this milestone invoice would leave releases already sent billing
    more retainage than is still withheld, or None."""
    if invoice.invoice_type != InvoiceType.MILESTONE or invoice.retainage_amount <= 0:
        return None
    project = invoice.project
    sent_released = sum(
        Invoice.objects.filter(project=project, invoice_type=InvoiceType.RETAINAGE_RELEASE)
        .exclude(status__in=[InvoiceStatus.CANCELLED, InvoiceStatus.DRAFT])
        .values_list("amount", flat=True),
        ZERO,
    )
    withheld_after = project_retainage(project).withheld.amount
    if invoice.status != InvoiceStatus.CANCELLED:
        withheld_after -= invoice.retainage_amount
    if withheld_after < sent_released:
        return Conflict(
            f"{invoice}'s retainage was already released on a sent release invoice; cancel "
            "that release invoice first.",
            code="retainage_already_released",
        )
    return None


def retainage_release(*, actor: User, project_id: int, now: datetime | None = None) -> Invoice:
    """Staff release early: a draft release invoice for all the retainage held."""
    now = now or timezone.now()
    with transaction.atomic():
        project = lock_project(project_id)
        held = project_retainage(project).held
        if held.amount <= 0:
            raise Conflict(
                f"Project {project.pk} holds no retainage, so there is nothing to release.",
                code="retainage_nothing_held",
            )
        return _create_release(actor=actor, project=project, amount=held, now=now, early=True)
