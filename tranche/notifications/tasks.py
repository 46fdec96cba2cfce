"""The email delivery task. One task delivers every due email, in batches (see
`notifications.delivery`), so a burst of emails queues one task, not one each: a task
queued while another waits to start would find nothing left to send."""

from __future__ import annotations

from django_tasks import task
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from tranche.core.requestid import current_request_id, request_id_scope
from tranche.notifications.delivery import outbox_deliver_due_report

# Emails one run of the task claims at most, so other tasks (PaymentIntent syncs) are not
# held behind a long queue of emails.
DRAIN_LIMIT = 500


@task()
def deliver_email(email_id: int, request_id: str = "") -> int:
    """Deliver the due emails, `email_id`'s among them; returns how many were sent. While
    its batches come back full, it keeps a successor waiting: a free queue process
    (`tranche worker --processes`) starts on the next batches beside it, and the rest
    left at DRAIN_LIMIT is not left for the sweep.

    `request_id`: the request that queued this task, so the delivery's log lines carry
    its id (a batch may also carry emails that later requests queued while it waited)."""
    queued = isinstance(deliver_email.get_backend(), DatabaseBackend)
    with request_id_scope(request_id):
        report = outbox_deliver_due_report(
            limit=DRAIN_LIMIT,
            # The immediate backend would run the successor inside this task, and its
            # successor inside it: the sweep takes what is left instead.
            more_due=(lambda: enqueue_delivery(email_id)) if queued else None,
        )
    return report.sent


def delivery_waiting() -> bool:
    """Whether a delivery task is queued and not started yet. It will take every email
    that is due when it starts, so a new email needs no task of its own. One that has
    started may have claimed its last batch already: it does not count."""
    backend = deliver_email.get_backend()
    if not isinstance(backend, DatabaseBackend):
        return False  # the immediate backend runs each task as it is queued
    return (
        DBTaskResult.objects.ready()
        .filter(backend_name=backend.alias, task_path=deliver_email.module_path)
        .exists()
    )


def enqueue_delivery(email_id: int) -> None:
    """Queue the delivery task unless one is waiting to start. Two callers racing may
    both queue one; the second finds nothing due, which costs a query, not an email."""
    if not delivery_waiting():
        deliver_email.enqueue(email_id, request_id=current_request_id())
