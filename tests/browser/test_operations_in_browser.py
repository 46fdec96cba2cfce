"""Settings → Operations in a real browser: an admin finds the email that failed and
sends it again with its Retry button, on a laptop and on a phone."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser

from tests.billing import stripe_events
from tests.billing.helpers import draft_for
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tests.fakes.smtp_server import SmtpServer
from tranche.accounts.models import User
from tranche.billing.models import StripeEvent
from tranche.billing.services.sending import invoice_send
from tranche.core.heartbeat import TICK, WORKER, heartbeat_record
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_an_admin_retries_a_failed_email_from_the_operations_page(
    browser: Browser,
    live_server: Any,
    admin: User,
    project_a: Project,
    smtp: SmtpServer,
    viewport: dict[str, int],
) -> None:
    invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    email = OutboxEmail.objects.get(kind="invoice_sent")
    OutboxEmail.objects.filter(pk=email.pk).update(
        status=OutboxStatus.FAILED,
        attempts=12,
        last_error="SMTPRecipientsRefused: {'accounts@acme.example': (550, b'Mailbox full')}",
    )
    StripeEvent.objects.create(
        event_id="evt_1QbWaiting0000000000000",
        event_type="payment_intent.succeeded",
        payload=json.loads(stripe_events.intent_succeeded("pi_3QbUnknown", 12000)),
        received_at=timezone.now() - timedelta(hours=2),
        attempts=8,
        outcome="waiting: no invoice has this PaymentIntent yet",
    )
    smtp.messages.clear()  # the invoice's first delivery, before it "failed"
    heartbeat_record(name=WORKER, now=timezone.now() - timedelta(minutes=12))
    heartbeat_record(
        name=TICK,
        summary="tick: 0 marked overdue, 0 reminder(s) queued, 0 waiting webhook event(s) "
        "processed, 0 PaymentIntent(s) brought in step, 0 email(s) delivered, 1 failure(s)",
        now=timezone.now() - timedelta(minutes=14),
    )

    page = signed_in_page(browser, live_server, admin, viewport)
    page.goto(f"{live_server.url}/settings/")
    page.click("nav.settings-tabs >> text=Operations")
    page.wait_for_url(f"{live_server.url}/settings/operations/")
    assert "The worker has not been seen for more than 5 minutes." in page.inner_text("main")
    width = "laptop" if viewport is LAPTOP else "phone"
    check_page(page, f"operations-{width}")

    page.get_by_role(
        "button", name=f"Retry the email to accounts@acme.example: {email.subject}"
    ).click()
    page.wait_for_load_state()
    assert "The email will be sent again in a moment." in page.inner_text("main")
    # The task the retry queued sent it (here the tests' immediate queue, in production
    # the worker), once.
    email.refresh_from_db()
    assert email.status == OutboxStatus.SENT
    assert [m["To"] for m in smtp.messages] == ["accounts@acme.example"]
    page.reload()
    assert "No email is failing or waiting." in page.inner_text("main")
    check_page(page, f"operations-retried-{width}")
