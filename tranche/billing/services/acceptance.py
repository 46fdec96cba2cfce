"""Accepting a quote, with its deposits: the project is made (projects.services), and in
the same transaction every schedule item billed on acceptance is completed and gets its
draft invoice. It lives in billing because it makes invoices; every caller (the API, the
staff page, the customer's portal) comes here.

If the business sends deposit invoices automatically, each deposit draft is sent after
the acceptance has committed (sending calls the payment provider, never inside a
transaction). A failed send leaves the draft, records why on it, and the acceptance
stands."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.models import Invoice
from tranche.billing.services.drafts import complete_locked
from tranche.billing.services.retainage import release_when_finished
from tranche.billing.services.sending import invoice_send
from tranche.core.db import after_commit, require_atomic
from tranche.core.errors import DomainError, ProviderError
from tranche.projects import services as projects_services
from tranche.projects.locks import lock_project
from tranche.projects.models import MilestoneStatus, Project
from tranche.projects.selectors import milestones_of
from tranche.sales.services import Acceptance

logger = logging.getLogger(__name__)


def quote_accept(
    *,
    actor: User,
    quote_id: int,
    acceptance: Acceptance | None = None,
    now: datetime | None = None,
) -> Project:
    """Accept a quote (see projects.services.quote_accept_as_project for who may, and how): the
    project is made and its deposits billed in one transaction. Accepting it again is
    refused (409) before anything is made, so a retried acceptance bills nothing twice."""
    now = now or timezone.now()
    with transaction.atomic():
        project = projects_services.quote_accept_as_project(
            actor=actor, quote_id=quote_id, acceptance=acceptance, now=now
        )
        deposits = bill_deposits(actor=actor, project=project, now=now)
        if deposits and business_profile().send_deposits_automatically:
            ids = [invoice.pk for invoice in deposits]
            after_commit(lambda: send_deposits(actor=actor, invoice_ids=ids, now=now))
    return project


def bill_deposits(*, actor: User, project: Project, now: datetime) -> list[Invoice]:
    """Complete the project's pending deposit milestones, each with its draft invoice
    (inside the acceptance's transaction)."""
    require_atomic()
    project = lock_project(project.pk)
    milestones = milestones_of(project)
    invoices = []
    for milestone in milestones:
        if milestone.bill_on_acceptance and milestone.status == MilestoneStatus.PENDING:
            invoice = complete_locked(
                actor=actor, project=project, milestones=milestones, milestone=milestone, now=now
            )
            if invoice is not None:
                invoices.append(invoice)
    if invoices:
        # A schedule billed wholly on acceptance is finished at once.
        release_when_finished(actor=actor, project=project, milestones=milestones, now=now)
    return invoices


def send_deposits(*, actor: User, invoice_ids: list[int], now: datetime) -> list[int]:
    """Send each deposit draft; returns the ids sent. One that cannot be sent stays a
    draft with an event saying why (a provider failure records its own), and the others
    are still sent."""
    sent = []
    for invoice_id in invoice_ids:
        try:
            invoice_send(actor=actor, invoice_id=invoice_id, now=now)
        except ProviderError:
            logger.warning("Deposit invoice %s was not sent automatically", invoice_id)
        except DomainError as exc:
            logger.warning("Deposit invoice %s was not sent automatically", invoice_id)
            with transaction.atomic():
                invoice = Invoice.objects.get(pk=invoice_id)
                record_event(
                    invoice,
                    EventKind.SEND_FAILED,
                    actor=actor,
                    now=now,
                    error=exc.detail,
                    automatic=True,
                )
        else:
            sent.append(invoice_id)
    return sent
