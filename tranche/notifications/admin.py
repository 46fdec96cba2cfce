"""The email outbox in the operations admin: what left, what waits, what failed."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tranche.core.admin import ReadOnlyAdmin, operations_site
from tranche.core.logging import redact
from tranche.notifications.models import OutboxEmail
from tranche.notifications.services import outbox_retry

logger = logging.getLogger(__name__)


@admin.register(OutboxEmail, site=operations_site)
class OutboxEmailAdmin(ReadOnlyAdmin[OutboxEmail]):
    list_display = ["key", "kind", "to", "status", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["status", "kind"]
    search_fields = ["to", "key"]
    actions = ["retry"]
    # The bodies carry the customer's payment link, itself the credential to pay.
    exclude = ["body_text", "body_html"]
    readonly_fields = ["text_without_pay_link"]

    @admin.display(description="Body (text)")
    def text_without_pay_link(self, email: OutboxEmail) -> str:
        return redact(email.body_text)

    @admin.action(description="Retry the selected failed emails", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[OutboxEmail]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        retried = outbox_retry(email_ids=selected)
        logger.info("%s retried %s of outbox emails %s", request.user, retried, selected)
        left = len(selected) - retried
        message = f"{retried} failed email(s) will be sent again."
        if left:
            message += f" {left} not failed were left as they are."
        self.message_user(request, message, messages.SUCCESS if retried else messages.WARNING)
