"""Settings → Operations (admins only): emails that failed or wait and Stripe events
waiting or given up, each with a Retry button; when the worker, the periodic pass and
the reconciliation last ran."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from tranche.billing.operations import operations_overview
from tranche.billing.webhooks import stripe_events_retry
from tranche.core.errors import DomainError, NotFound
from tranche.core.logging import redact
from tranche.notifications.services import outbox_retry_now
from tranche.web.views.settings import _admin_only

logger = logging.getLogger(__name__)


@login_required
@require_GET
def operations_page(request: HttpRequest) -> HttpResponse:
    _admin_only(request)
    overview = operations_overview(now=timezone.now())
    for email in overview.emails:
        # An SMTP error can quote the message; the pay link in it is a credential.
        email.last_error = redact(email.last_error)
    return render(request, "web/settings/operations.html", {"o": overview})


@login_required
@require_POST
def email_retry(request: HttpRequest, email_id: int) -> HttpResponse:
    user = _admin_only(request)
    try:
        previous = outbox_retry_now(email_id=email_id)
    except NotFound:
        raise Http404("No such email.") from None
    except DomainError as exc:  # sent already, or being sent
        messages.error(request, exc.detail)
    else:
        logger.info("%s retried outbox email %s (%s)", user, email_id, previous)
        messages.success(request, "The email will be sent again in a moment.")
    return redirect("settings-operations")


@login_required
@require_POST
def stripe_event_retry(request: HttpRequest, event_id: int) -> HttpResponse:
    user = _admin_only(request)
    report = stripe_events_retry(event_ids=[event_id])
    if not (report.processed or report.waiting or report.skipped):
        raise Http404("No such Stripe event.")
    logger.info("%s retried Stripe event %s: %s", user, event_id, report)
    if report.processed:
        messages.success(request, "The Stripe event was processed.")
    elif report.waiting:
        messages.warning(
            request, "The Stripe event still cannot be settled; its reason is shown below."
        )
    else:
        messages.info(request, "The Stripe event was processed already; nothing was done again.")
    return redirect("settings-operations")


urlpatterns = [
    path("settings/operations/", operations_page, name="settings-operations"),
    path(
        "settings/operations/emails/<int:email_id>/retry",
        email_retry,
        name="settings-operations-email-retry",
    ),
    path(
        "settings/operations/stripe-events/<int:event_id>/retry",
        stripe_event_retry,
        name="settings-operations-event-retry",
    ),
]
