from __future__ import annotations

from django_tasks import task

from tranche.notifications.delivery import outbox_deliver


@task()
def deliver_email(email_id: int) -> bool:
    return outbox_deliver(email_id=email_id)
