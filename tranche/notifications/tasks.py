from __future__ import annotations

from django_tasks import task

from tranche.core.requestid import request_id_scope
from tranche.notifications.delivery import outbox_deliver


@task()
def deliver_email(email_id: int, request_id: str = "") -> bool:
    # `request_id`: the request that queued it, so its delivery's log lines carry its id.
    with request_id_scope(request_id):
        return outbox_deliver(email_id=email_id)
