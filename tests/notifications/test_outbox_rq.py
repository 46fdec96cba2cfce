"""Delivery on the Redis queue (TASKS_BACKEND=rq) keeps the database queue's promise: a
burst of emails queues one delivery task, which sends them all; an email queued once that
task has started gets a task of its own. Runs against a throw-away redis-server when one
is installed (`make test-scale` runs the whole application on it as well)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.redis_server import redis_server_binary, throwaway_redis
from tests.fakes.smtp_server import SmtpServer
from tests.helpers import AfterCommit
from tests.notifications.test_outbox_batches import queue, statuses
from tranche.notifications.models import OutboxStatus
from tranche.notifications.tasks import RQ_WAITING_KEY, deliver_email

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
    pytest.mark.skipif(redis_server_binary() is None, reason="redis-server is not installed"),
]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with throwaway_redis() as url:
        yield url


@pytest.fixture
def rq_queue(redis_url: str, settings: Any) -> Iterator[Any]:
    """The settings TASKS_BACKEND=rq makes, on the throw-away server, emptied after."""
    import django_rq
    from django_tasks_rq import Job

    settings.RQ_QUEUES = {"default": {"URL": redis_url, "DEFAULT_TIMEOUT": 600}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    queue = django_rq.get_queue("default", job_class=Job)
    yield queue
    queue.connection.flushdb()


def jobs_of_delivery(rq_queue: Any) -> list[Any]:
    return [job for job in rq_queue.get_jobs() if job.func_name == deliver_email.module_path]


def run_queue(rq_queue: Any) -> None:
    """As `tranche worker` runs it (`rqworker --job-class django_tasks_rq.Job`), in this
    process so the job sees the test's transaction."""
    from django_tasks_rq import Job
    from rq import SimpleWorker

    SimpleWorker([rq_queue], connection=rq_queue.connection, job_class=Job).work(burst=True)


def test_a_burst_of_emails_queues_one_rq_job_which_sends_them_all(
    rq_queue: Any, smtp: SmtpServer, after_commit: AfterCommit
) -> None:
    with after_commit(execute=True):
        emails = queue(5)

    [job] = jobs_of_delivery(rq_queue)
    assert list(job.args) == [emails[0].pk]
    assert rq_queue.connection.exists(RQ_WAITING_KEY)

    run_queue(rq_queue)

    assert smtp.connections == 1
    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(e.to for e in emails)
    assert set(statuses().values()) == {(OutboxStatus.SENT, 1)}
    assert not rq_queue.connection.exists(RQ_WAITING_KEY)
    assert jobs_of_delivery(rq_queue) == []


def test_an_email_queued_once_the_rq_job_started_gets_a_job_of_its_own(
    rq_queue: Any, after_commit: AfterCommit
) -> None:
    with after_commit(execute=True):
        queue(1)
    # What the job does first when a worker starts it.
    rq_queue.connection.delete(RQ_WAITING_KEY)
    with after_commit(execute=True):
        queue(1, first=1)

    assert len(jobs_of_delivery(rq_queue)) == 2
