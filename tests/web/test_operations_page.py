"""Settings → Operations: an admin sees what the background work left for a person and
retries it; staff are refused (403) and customers shown nothing (404)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing import stripe_events
from tests.billing.helpers import draft_for
from tests.helpers import AfterCommit, unchanged
from tranche.accounts.models import User
from tranche.billing.models import StripeEvent
from tranche.billing.services.sending import invoice_send
from tranche.core.heartbeat import RECONCILE, TICK, WORKER, heartbeat_record
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

PAGE = "/settings/operations/"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def failed_email(admin: User, project_a: Project) -> OutboxEmail:
    invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    email = OutboxEmail.objects.get(kind="invoice_sent")
    link = next(word for word in email.body_text.split() if "/pay/" in word)
    OutboxEmail.objects.filter(pk=email.pk).update(
        status=OutboxStatus.FAILED,
        attempts=12,
        last_error=f"SMTPDataError: 554 rejected, content {link}",
    )
    email.refresh_from_db()
    return email


@pytest.fixture
def given_up_event() -> StripeEvent:
    return StripeEvent.objects.create(
        event_id="evt_given_up_1",
        event_type="payment_intent.succeeded",
        payload=json.loads(stripe_events.intent_succeeded("pi_for_nobody", 5000)),
        received_at=timezone.now() - timedelta(days=4),
        processed_at=timezone.now() - timedelta(days=1),
        attempts=40,
        outcome="gave up: waiting: no invoice has this PaymentIntent yet",
    )


def test_an_admin_sees_failed_emails_given_up_events_and_the_last_runs(
    admin: User, failed_email: OutboxEmail, given_up_event: StripeEvent
) -> None:
    now = timezone.now()
    heartbeat_record(name=WORKER, now=now - timedelta(seconds=20))
    heartbeat_record(name=TICK, summary="tick: 0 marked overdue, 1 email(s) delivered", now=now)
    heartbeat_record(name=RECONCILE, summary="3 invoice(s) checked", now=now)

    page = signed_in(admin).get(PAGE).content.decode()

    assert failed_email.subject in page
    assert f"/settings/operations/emails/{failed_email.pk}/retry" in page
    assert "evt_given_up_1" in page
    assert f"/settings/operations/stripe-events/{given_up_event.pk}/retry" in page
    assert "gave up: waiting: no invoice has this PaymentIntent yet" in page
    assert "tick: 0 marked overdue, 1 email(s) delivered" in page
    assert "3 invoice(s) checked" in page
    assert "has not been seen" not in page
    assert "has never been seen" not in page
    # The SMTP error quoted the pay link: shown redacted, as everywhere.
    assert "content http://testserver/pay/[redacted]" in page
    assert failed_email.body_text.split("/pay/")[1].split()[0] not in page


def test_a_worker_not_seen_for_minutes_is_a_warning(admin: User, settings: Any) -> None:
    settings.READY_WORKER_MINUTES = 5
    assert "The worker has never been seen." in signed_in(admin).get(PAGE).content.decode()
    heartbeat_record(name=WORKER, now=timezone.now() - timedelta(minutes=9))
    page = signed_in(admin).get(PAGE).content.decode()
    assert "The worker has not been seen for more than 5 minutes." in page


def test_retrying_a_failed_email_sends_it_again(
    admin: User, failed_email: OutboxEmail, after_commit: AfterCommit
) -> None:
    client = signed_in(admin)
    with after_commit(execute=True):
        response = client.post(f"/settings/operations/emails/{failed_email.pk}/retry")
    assert response["Location"] == PAGE
    failed_email.refresh_from_db()
    assert (failed_email.status, failed_email.attempts) == (OutboxStatus.SENT, 1)
    page = client.get(PAGE).content.decode()
    assert "The email will be sent again in a moment." in page
    assert "No email is failing or waiting." in page


def test_retrying_a_waiting_email_tries_it_now_keeping_its_count(
    admin: User, failed_email: OutboxEmail, after_commit: AfterCommit
) -> None:
    later = timezone.now() + timedelta(hours=2)
    OutboxEmail.objects.filter(pk=failed_email.pk).update(
        status=OutboxStatus.PENDING, attempts=5, next_attempt_at=later
    )
    with after_commit(execute=True):
        signed_in(admin).post(f"/settings/operations/emails/{failed_email.pk}/retry")
    failed_email.refresh_from_db()
    assert (failed_email.status, failed_email.attempts) == (OutboxStatus.SENT, 6)


def test_retrying_a_sent_email_says_so_and_changes_nothing(
    admin: User, failed_email: OutboxEmail
) -> None:
    OutboxEmail.objects.filter(pk=failed_email.pk).update(status=OutboxStatus.SENT)
    client = signed_in(admin)
    with unchanged():
        response = client.post(f"/settings/operations/emails/{failed_email.pk}/retry")
    assert response["Location"] == PAGE
    assert "This email was sent already." in client.get(PAGE).content.decode()


def test_retrying_a_given_up_stripe_event_processes_it_through_the_webhook_path(
    admin: User, given_up_event: StripeEvent
) -> None:
    client = signed_in(admin)
    response = client.post(f"/settings/operations/stripe-events/{given_up_event.pk}/retry")
    assert response["Location"] == PAGE
    given_up_event.refresh_from_db()
    # Still no invoice for it: tried again, and given up again with this attempt's reason.
    assert given_up_event.attempts == 41
    assert given_up_event.outcome.startswith("gave up: waiting:")
    assert "still cannot be settled" in client.get(PAGE).content.decode()


def test_unknown_ids_are_404(admin: User) -> None:
    client = signed_in(admin)
    with unchanged():
        assert client.post("/settings/operations/emails/999999/retry").status_code == 404
        assert client.post("/settings/operations/stripe-events/999999/retry").status_code == 404


@pytest.mark.parametrize(("persona", "status"), [("staff", 403), ("alice", 404)])
def test_staff_and_customers_are_refused_and_change_nothing(
    request: pytest.FixtureRequest,
    persona: str,
    status: int,
    failed_email: OutboxEmail,
    given_up_event: StripeEvent,
) -> None:
    client = signed_in(request.getfixturevalue(persona))
    assert client.get(PAGE).status_code == status
    with unchanged():
        retried = client.post(f"/settings/operations/emails/{failed_email.pk}/retry")
        event = client.post(f"/settings/operations/stripe-events/{given_up_event.pk}/retry")
    assert (retried.status_code, event.status_code) == (status, status)


def test_the_settings_tabs_lead_to_it(admin: User) -> None:
    page = signed_in(admin).get("/settings/").content.decode()
    assert '<a href="/settings/operations/">Operations</a>' in page
