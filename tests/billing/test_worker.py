"""`tranche worker`: nothing one pass raises stops it."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.billing.helpers import draft_for
from tests.fakes.smtp_server import SmtpServer
from tranche.accounts.models import User
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def test_a_periodic_pass_that_raises_is_logged_and_the_email_sweep_still_runs(
    project_a: Project,
    admin: User,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    assert OutboxEmail.objects.get().status == OutboxStatus.PENDING  # no commit in this test

    def broken_pass() -> str:
        raise RuntimeError("a poisoned item")

    monkeypatch.setattr("tranche.billing.management.commands.worker.run_periodic", broken_pass)
    out = io.StringIO()
    with caplog.at_level(logging.ERROR, logger="tranche.worker"):
        call_command("worker", "--once", stdout=out)

    assert "Delivered 1 queued email(s)." in out.getvalue()
    assert OutboxEmail.objects.get().status == OutboxStatus.SENT
    assert len(smtp.messages) == 1
    [record] = [r for r in caplog.records if r.name == "tranche.worker"]
    assert record.getMessage() == (
        "The worker's periodic pass failed; it will run again at its next turn."
    )
    assert record.exc_info is not None
    assert "a poisoned item" in str(record.exc_info[1])


def test_the_worker_runs_as_many_task_queue_processes_as_asked(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TASKS_IMMEDIATE = False
    started: list[str] = []

    class FakeQueue:
        def __init__(self, *, once: bool) -> None:
            assert once

        def start(self) -> None:
            started.append("queue")

        def stop(self, *, timeout: float | None = 30) -> int:
            return 0

    monkeypatch.setattr("tranche.billing.management.commands.worker.QueueProcess", FakeQueue)
    monkeypatch.setattr("tranche.billing.management.commands.worker.run_periodic", lambda: "tick")

    call_command("worker", "--once", "--processes", "3", stdout=io.StringIO())
    assert started == ["queue"] * 3

    started.clear()
    settings.WORKER_PROCESSES = 2
    call_command("worker", "--once", stdout=io.StringIO())
    assert started == ["queue"] * 2

    with pytest.raises(CommandError, match="at least 1"):
        call_command("worker", "--once", "--processes", "0", stdout=io.StringIO())
