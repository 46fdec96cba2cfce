"""Billing in the operations admin: Stripe events (and retrying them), invoice events,
and read-only lists of invoices and payments."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from tranche.billing.models import CreditNote, Invoice, InvoiceEvent, Payment, StripeEvent
from tranche.billing.webhooks import GAVE_UP, stripe_events_retry
from tranche.core.admin import ReadOnlyAdmin, operations_site

logger = logging.getLogger(__name__)


class StripeEventStateFilter(admin.SimpleListFilter):
    """Where an event stands, from `processed_at` and the prefix of its outcome."""

    title = "state"
    parameter_name = "state"

    _CLOSED_BADLY = Q(outcome__startswith="rejected:") | Q(outcome__startswith="refused:")
    _GAVE_UP = Q(outcome__startswith=GAVE_UP)

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [
            ("waiting", "Waiting"),
            ("processed", "Processed"),
            ("rejected", "Rejected or refused"),
            ("given_up", "Given up"),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[StripeEvent]
    ) -> QuerySet[StripeEvent]:
        value = self.value()
        if value == "waiting":
            return queryset.filter(processed_at__isnull=True)
        done = queryset.filter(processed_at__isnull=False)
        if value == "processed":
            return done.exclude(self._CLOSED_BADLY | self._GAVE_UP)
        if value == "rejected":
            return done.filter(self._CLOSED_BADLY)
        if value == "given_up":
            return done.filter(self._GAVE_UP)
        return queryset


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "[redacted]" if key == "client_secret" else _without_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


@admin.register(StripeEvent, site=operations_site)
class StripeEventAdmin(ReadOnlyAdmin[StripeEvent]):
    list_display = ["event_id", "event_type", "received_at", "processed_at", "attempts", "outcome"]
    list_filter = [StripeEventStateFilter, "event_type"]
    search_fields = ["=event_id"]
    ordering = ["-received_at", "-id"]
    actions = ["retry"]
    # A PaymentIntent event carries the intent's client secret: shown without it.
    exclude = ["payload"]
    readonly_fields = ["payload_without_secrets"]

    @admin.display(description="Payload")
    def payload_without_secrets(self, event: StripeEvent) -> str:
        return json.dumps(_without_secrets(event.payload), indent=2, sort_keys=True)

    @admin.action(
        description="Retry the selected waiting or given-up events", permissions=["retry"]
    )
    def retry(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        report = stripe_events_retry(event_ids=selected)
        logger.info("%s retried Stripe events %s: %s", request.user, selected, report)
        message = (
            f"{report.processed + report.waiting} event(s) retried: {report.processed} processed, "
            f"{report.waiting} still cannot be settled."
        )
        if report.skipped:
            message += f" {report.skipped} already processed were left as they are."
        level = messages.SUCCESS if report.processed and not report.waiting else messages.WARNING
        self.message_user(request, message, level)


@admin.register(InvoiceEvent, site=operations_site)
class InvoiceEventAdmin(ReadOnlyAdmin[InvoiceEvent]):
    list_display = ["invoice", "kind", "actor", "created_at"]
    list_filter = ["kind"]
    search_fields = ["invoice__number"]
    list_select_related = ["invoice", "actor"]


@admin.register(Invoice, site=operations_site)
class InvoiceAdmin(ReadOnlyAdmin[Invoice]):
    list_display = [
        "__str__",
        "customer_name",
        "status",
        "amount",
        "amount_paid",
        "currency",
        "due_date",
        "payment_gateway",
    ]
    list_filter = ["status", "invoice_type", "payment_gateway"]
    search_fields = ["number", "customer_name"]
    # The pay token and the link built from it are the customer's credential to pay.
    exclude = ["pay_token", "payment_link"]


@admin.register(Payment, site=operations_site)
class PaymentAdmin(ReadOnlyAdmin[Payment]):
    list_display = [
        "invoice",
        "amount",
        "currency",
        "method",
        "received_on",
        "provider_reference",
        "reference",
    ]
    list_filter = ["method"]
    search_fields = ["invoice__number", "provider_reference", "reference"]
    list_select_related = ["invoice"]


@admin.register(CreditNote, site=operations_site)
class CreditNoteAdmin(ReadOnlyAdmin[CreditNote]):
    list_display = ["number", "invoice", "customer_name", "kind", "amount", "currency"]
    list_filter = ["kind"]
    search_fields = ["number", "invoice__number", "customer_name"]
    list_select_related = ["invoice"]
