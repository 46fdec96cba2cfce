"""Email leaves through a real SMTP server after commit, once, and survives SMTP outages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.fakes.smtp_server import SmtpServer
from tests.helpers import AfterCommit
from tranche.accounts.models import User
from tranche.billing.services.sending import invoice_send
from tranche.notifications.delivery import outbox_deliver_due
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.notifications.services import outbox_enqueue
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def test_the_invoice_email_is_delivered_over_smtp_with_text_and_html(
    project_a: Project, admin: User, smtp: SmtpServer, after_commit: AfterCommit
) -> None:
    draft = draft_for(project_a, 1, admin)
    with after_commit(execute=True):
        invoice = invoice_send(actor=admin, invoice_id=draft.pk)

    [message] = smtp.messages
    assert message["To"] == "accounts@acme.example"
    assert message["Subject"].startswith(
        f"Invoice {invoice.number} from Harbour Build Co: $300.00 due"
    )
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for body in (text, html):
        assert invoice.number in body
        assert "Kitchen for A" in body
        assert "$300.00" in body
        assert invoice.payment_link in body
        assert f"{invoice.due_date:%b %-d, %Y}" in body
    assert OutboxEmail.objects.get().status == OutboxStatus.SENT


def test_when_smtp_is_down_the_email_waits_and_leaves_once_it_is_back(
    project_a: Project, admin: User, smtp: SmtpServer, after_commit: AfterCommit
) -> None:
    smtp.stop()
    draft = draft_for(project_a, 1, admin)
    with after_commit(execute=True):
        invoice_send(actor=admin, invoice_id=draft.pk)

    queued = OutboxEmail.objects.get()
    assert queued.status == OutboxStatus.PENDING
    assert queued.attempts == 1
    assert "Connection refused" in queued.last_error or "Errno" in queued.last_error
    first_retry = queued.next_attempt_at
    assert first_retry > timezone.now()

    # Still down at the retry: the next attempt backs off further.
    assert outbox_deliver_due(now=first_retry) == 0
    queued.refresh_from_db()
    assert queued.attempts == 2
    assert queued.next_attempt_at - first_retry >= timedelta(minutes=2)

    smtp.start()
    assert outbox_deliver_due(now=queued.next_attempt_at - timedelta(seconds=1)) == 0  # not due yet
    assert outbox_deliver_due(now=queued.next_attempt_at) == 1
    assert outbox_deliver_due(now=queued.next_attempt_at + timedelta(hours=1)) == 0
    assert len(smtp.messages) == 1
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == (OutboxStatus.SENT, 3)


def test_no_email_for_a_send_that_rolled_back(
    project_a: Project, admin: User, smtp: SmtpServer, after_commit: AfterCommit
) -> None:
    from django.db import transaction

    draft = draft_for(project_a, 1, admin)

    def send_then_fail() -> None:
        with transaction.atomic():
            invoice_send(actor=admin, invoice_id=draft.pk)
            raise RuntimeError("something after the send failed")

    with after_commit(execute=True), pytest.raises(RuntimeError):
        send_then_fail()
    assert smtp.messages == []
    assert OutboxEmail.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_email_cannot_be_queued_outside_the_transaction_of_its_change(
    smtp: SmtpServer,
) -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox_enqueue(
            key="alone",
            kind="invoice_sent",
            to="accounts@acme.example",
            template="invoice_sent",
            context={},
        )
    assert OutboxEmail.objects.count() == 0
    assert smtp.messages == []


def test_every_attempt_of_an_email_carries_the_same_message_id(
    project_a: Project, admin: User, smtp: SmtpServer, after_commit: AfterCommit
) -> None:
    """Delivery is at least once (a worker that dies after the server kept the message
    sends it again): the copy has the first one's Message-ID, so mail clients see one."""
    with after_commit(execute=True):
        invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
        invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    first, _second = OutboxEmail.objects.order_by("pk")
    # As after a worker died mid-send: the row is sending again once its claim times out.
    OutboxEmail.objects.filter(pk=first.pk).update(status=OutboxStatus.PENDING)

    assert outbox_deliver_due() == 1

    ids = [str(m["Message-ID"]) for m in smtp.messages]
    assert len(ids) == 3
    assert len(set(ids)) == 2
    assert ids[0] == ids[2] != ids[1]
    assert ids[0].startswith(f"<tranche.outbox.{first.pk}.")
    assert ids[0].endswith("@testserver>")
