"""Queued emails leave in batches: one delivery task for a burst of emails, one SMTP
connection for a batch, and each email's outcome its own (a refusal or a dropped
connection fails that email only; the others are sent once)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.fakes.smtp_server import SmtpServer
from tests.helpers import AfterCommit
from tranche.notifications import delivery
from tranche.notifications.delivery import outbox_deliver_due, outbox_deliver_due_report
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.notifications.services import outbox_enqueue
from tranche.notifications.tasks import deliver_email

pytestmark = pytest.mark.django_db


def queue(n: int, *, first: int = 0, to: str = "customer{i}@acme.example") -> list[OutboxEmail]:
    """`n` emails, each queued in its own transaction as the app queues them."""
    emails = []
    for i in range(first, first + n):
        with transaction.atomic():
            email = outbox_enqueue(
                key=f"test:{i}",
                kind="invitation",
                to=to.format(i=i),
                template="invitation",
                context={"greeting_name": f"N{i}", "link": f"https://example.test/i/{i}"},
            )
        assert email is not None
        emails.append(email)
    return emails


def statuses() -> dict[int, tuple[str, int]]:
    return {pk: (s, a) for pk, s, a in OutboxEmail.objects.values_list("pk", "status", "attempts")}


def test_ten_due_emails_leave_over_one_smtp_connection(smtp: SmtpServer) -> None:
    emails = queue(10)

    assert outbox_deliver_due() == 10

    assert smtp.connections == 1
    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(e.to for e in emails)
    assert set(statuses().values()) == {(OutboxStatus.SENT, 1)}


def test_a_queue_longer_than_a_batch_takes_one_connection_per_batch(
    smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "BATCH_SIZE", 4)
    queue(10)

    report = outbox_deliver_due_report(limit=100)

    assert (report.sent, report.failed, report.claimed) == (10, 0, 10)
    assert smtp.connections == 3  # 4 + 4 + 2
    assert len(smtp.messages) == 10


def test_a_refused_recipient_in_the_middle_fails_that_email_only(smtp: SmtpServer) -> None:
    first, refused, last = queue(3)
    smtp.collector.refused.add(refused.to)

    assert outbox_deliver_due() == 2

    assert sorted(str(m["To"]) for m in smtp.messages) == sorted([first.to, last.to])
    assert smtp.connections == 1  # the server answered; the connection went on
    assert statuses() == {
        first.pk: (OutboxStatus.SENT, 1),
        refused.pk: (OutboxStatus.PENDING, 1),
        last.pk: (OutboxStatus.SENT, 1),
    }
    refused.refresh_from_db()
    assert refused.last_error.startswith("SMTPRecipientsRefused")
    assert refused.next_attempt_at > timezone.now()  # backs off like any failure

    # Nothing is sent again at the next sweep, and the refused one waits for its retry.
    assert outbox_deliver_due() == 0
    assert len(smtp.messages) == 2


def test_a_connection_dropped_in_the_middle_fails_that_email_and_the_rest_go_on_a_new_one(
    smtp: SmtpServer,
) -> None:
    first, dropped, third, fourth = queue(4)
    smtp.collector.drop_data_to.add(dropped.to)

    assert outbox_deliver_due() == 3

    assert sorted(str(m["To"]) for m in smtp.messages) == sorted([first.to, third.to, fourth.to])
    assert smtp.connections == 2
    assert statuses() == {
        first.pk: (OutboxStatus.SENT, 1),
        dropped.pk: (OutboxStatus.PENDING, 1),
        third.pk: (OutboxStatus.SENT, 1),
        fourth.pk: (OutboxStatus.SENT, 1),
    }

    smtp.collector.drop_data_to.clear()
    dropped.refresh_from_db()
    assert outbox_deliver_due(now=dropped.next_attempt_at) == 1
    assert len(smtp.messages) == 4
    assert len({str(m["Message-ID"]) for m in smtp.messages}) == 4


def test_when_smtp_is_down_the_whole_batch_backs_off_after_one_try(smtp: SmtpServer) -> None:
    smtp.stop()
    emails = queue(3)

    assert outbox_deliver_due() == 0

    assert set(statuses().values()) == {(OutboxStatus.PENDING, 1)}
    for email in OutboxEmail.objects.all():
        assert "Connection refused" in email.last_error or "Errno" in email.last_error
        assert email.next_attempt_at > timezone.now()

    smtp.start()
    later = timezone.now() + timedelta(minutes=2)
    assert outbox_deliver_due(now=later) == 3
    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(e.to for e in emails)
    assert smtp.connections == 1


def test_a_slow_server_makes_the_batch_give_back_what_it_could_not_send_in_time(
    smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch must end before its claims could expire: what is left goes back, untried,
    for the next batch (no attempt counted, nothing sent twice)."""
    monkeypatch.setattr(delivery, "BATCH_SECONDS", 0.2)
    smtp.slow_data(0.3, keep_before_answer=True)
    emails = queue(3)

    assert outbox_deliver_due(limit=3) == 1

    sent, *left = emails
    assert statuses() == {
        sent.pk: (OutboxStatus.SENT, 1),
        left[0].pk: (OutboxStatus.PENDING, 0),
        left[1].pk: (OutboxStatus.PENDING, 0),
    }
    smtp.slow_data(0, keep_before_answer=True)
    assert outbox_deliver_due() == 2
    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(e.to for e in emails)


def test_a_burst_of_emails_queues_one_delivery_task_which_sends_them_all(
    smtp: SmtpServer, settings: Any, after_commit: AfterCommit
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with after_commit(execute=True):
        emails = queue(5)

    [task] = DBTaskResult.objects.filter(task_path=deliver_email.module_path)
    assert task.task_result.args == [emails[0].pk]
    # As the queue process runs it:
    assert deliver_email.call(emails[0].pk) == 5
    assert smtp.connections == 1
    assert set(statuses().values()) == {(OutboxStatus.SENT, 1)}


def test_an_email_queued_while_the_delivery_task_runs_gets_a_task_of_its_own(
    settings: Any, after_commit: AfterCommit
) -> None:
    """A started task may have claimed its last batch already: only a task that is
    waiting to start stands in for a new email."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with after_commit(execute=True):
        queue(1)
    DBTaskResult.objects.update(status="RUNNING")
    with after_commit(execute=True):
        queue(1, first=1)

    assert DBTaskResult.objects.filter(task_path=deliver_email.module_path).count() == 2


def test_a_task_that_reaches_its_limit_queues_the_next(
    smtp: SmtpServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    monkeypatch.setattr("tranche.notifications.tasks.DRAIN_LIMIT", 3)
    queue(5)  # the test's transaction never commits: no task was queued for them

    assert deliver_email.call(0) == 3
    assert DBTaskResult.objects.filter(task_path=deliver_email.module_path).count() == 1
    assert deliver_email.call(0) == 2
    assert len(smtp.messages) == 5


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_outcome_is_written_as_the_worker_writes_it(
    smtp: SmtpServer,
) -> None:
    """Delivery records outcomes in autocommit (on PostgreSQL without waiting for the
    disk): what it wrote is committed and read back."""
    smtp.collector.refused.add("customer1@acme.example")
    sent, refused = queue(2)  # each commit runs its delivery, as the app's do

    sent.refresh_from_db()
    refused.refresh_from_db()
    assert (sent.status, sent.claimed_at, sent.last_error) == (OutboxStatus.SENT, None, "")
    assert sent.sent_at is not None
    assert (refused.status, refused.attempts, refused.claimed_at) == (OutboxStatus.PENDING, 1, None)
    assert refused.last_error.startswith("SMTPRecipientsRefused")
    assert refused.next_attempt_at > timezone.now()
    assert [str(m["To"]) for m in smtp.messages] == [sent.to]
