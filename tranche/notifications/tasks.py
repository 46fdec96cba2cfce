"""The email delivery task. One task delivers every due email, in batches (see
`notifications.delivery`), so a burst of emails queues one task, not one each: a task
queued while another waits to start would find nothing left to send.

"Is a delivery task waiting to start?" is asked of the queue itself: of the task table
on the database queue, of a marker key beside the queue on Redis (TASKS_BACKEND=rq),
where the queue cannot be searched by task cheaply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_tasks import task
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from tranche.core.requestid import current_request_id, request_id_scope
from tranche.notifications.delivery import outbox_deliver_due_report

if TYPE_CHECKING:
    from redis import Redis

# Emails one run of the task claims at most, so other tasks (PaymentIntent syncs) are not
# held behind a long queue of emails.
DRAIN_LIMIT = 500
# On Redis: set while a delivery task waits to start, removed when it starts. Should the
# task be lost after the key was set (Redis restarted), new emails queue no task until it
# expires, and the worker's sweep (every 30 seconds) delivers them meanwhile.
RQ_WAITING_KEY = "tranche:deliver_email:waiting"
RQ_WAITING_SECONDS = 120


def _rq_connection(backend: Any) -> Redis | None:
    """The Redis connection of the RQ backend's queue; None on any other backend."""
    if type(backend).__module__.split(".")[0] != "django_tasks_rq":
        return None
    import django_rq

    connection: Redis = django_rq.get_connection(deliver_email.queue_name)
    return connection


@task()
def deliver_email(email_id: int, request_id: str = "") -> int:
    """Deliver the due emails, `email_id`'s among them; returns how many were sent. While
    its batches come back full, it keeps a successor waiting: a free queue process
    (`tranche worker --processes`) starts on the next batches beside it, and the rest
    left at DRAIN_LIMIT is not left for the sweep.

    `request_id`: the request that queued this task, so the delivery's log lines carry
    its id (a batch may also carry emails that later requests queued while it waited)."""
    backend = deliver_email.get_backend()
    redis = _rq_connection(backend)
    if redis is not None:
        # Started: from here on an email needs a task of its own again (this one may have
        # claimed its last batch before the email is committed).
        redis.delete(RQ_WAITING_KEY)
    queued = redis is not None or isinstance(backend, DatabaseBackend)
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
    redis = _rq_connection(backend)
    if redis is not None:
        return bool(redis.exists(RQ_WAITING_KEY))
    if not isinstance(backend, DatabaseBackend):
        return False  # the immediate backend runs each task as it is queued
    return (
        DBTaskResult.objects.ready()
        .filter(backend_name=backend.alias, task_path=deliver_email.module_path)
        .exists()
    )


def enqueue_delivery(email_id: int) -> None:
    """Queue the delivery task unless one is waiting to start. On the database queue two
    callers racing may both queue one; the second finds nothing due, which costs a query,
    not an email. On Redis the marker is set only if absent, so one of them queues it."""
    redis = _rq_connection(deliver_email.get_backend())
    if redis is not None:
        if redis.set(RQ_WAITING_KEY, email_id, nx=True, ex=RQ_WAITING_SECONDS):
            try:
                deliver_email.enqueue(email_id, request_id=current_request_id())
            except Exception:
                redis.delete(RQ_WAITING_KEY)  # no task waits: the next email queues one
                raise
        return
    if not delivery_waiting():
        deliver_email.enqueue(email_id, request_id=current_request_id())
