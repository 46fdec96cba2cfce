"""/metrics: Prometheus's text format behind a bearer token (METRICS_TOKEN), with the
HTTP requests by route and status and the business figures read from the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client.parser import text_string_to_metric_families

from tests.billing import stripe_events
from tests.billing.helpers import draft_for
from tests.helpers import AfterCommit, unchanged
from tranche.accounts.models import User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.notifications.services import outbox_retry
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

TOKEN = "m3tr1cs-t0ken-for-the-tests-only-4f9a2c"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = Client().get("/metrics", headers=SCRAPE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_on(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no token", "wrong token", "not bearer"],
)
def test_a_scrape_without_the_token_is_refused_and_reads_nothing(
    metrics_on: None, headers: dict[str, str], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        response = Client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"tranche_" not in response.content


def test_without_a_configured_token_there_is_no_metrics_page(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", headers=SCRAPE).status_code == 404
    assert Client().post("/metrics", headers=SCRAPE).status_code == 404


def test_a_scrape_changes_nothing_and_other_methods_are_refused(metrics_on: None) -> None:
    with unchanged():
        scrape()
    assert Client().post("/metrics", headers=SCRAPE).status_code == 405


def test_the_figures_after_a_flow_are_exact(
    metrics_on: None,
    settings: Any,
    admin: User,
    project_a: Project,
    after_commit: AfterCommit,
) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [stripe_events.WEBHOOK_SECRET]
    before = scrape()

    # Two invoices sent; the first paid by card on its pay page (the sandbox).
    with after_commit(execute=True):
        first = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
        invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    customer = Client()
    assert customer.get(f"/pay/{first.pay_token}").status_code == 200
    with after_commit(execute=True):
        paid = customer.post(f"/pay/{first.pay_token}", {"card_number": "4242 4242 4242 4242"})
    assert paid.status_code == 302

    # Stripe: an event Tranche ignores (delivered twice), one that cannot settle yet.
    for payload in (
        ignored := stripe_events.event("customer.created", {"id": "cus_1"}),
        ignored,
        stripe_events.intent_succeeded("pi_nobody_knows", 1000),
    ):
        Client().post(
            "/api/webhooks/stripe",
            payload,
            content_type="application/json",
            headers={"Stripe-Signature": stripe_events.sign(payload)},
        )

    # One email given up on, retried once the queue is the database's: its task waits.
    failed = OutboxEmail.objects.order_by("pk").first()
    assert failed is not None
    OutboxEmail.objects.filter(pk=failed.pk).update(
        status=OutboxStatus.FAILED, attempts=12, last_error="SMTPRecipientsRefused"
    )
    stuck = OutboxEmail.objects.order_by("pk")[1]
    OutboxEmail.objects.filter(pk=stuck.pk).update(
        status=OutboxStatus.PENDING,
        attempts=3,
        last_error="SMTPServerDisconnected",
        created_at=timezone.now() - timedelta(hours=2),
    )
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with after_commit(execute=True):
        outbox_retry(email_ids=[failed.pk])
    DBTaskResult.objects.update(enqueued_at=timezone.now() - timedelta(seconds=90))

    after = scrape()
    assert value(after, "tranche_invoices_sent_total") == 2
    assert Invoice.objects.filter(sent_at__isnull=False).count() == 2
    assert value(after, "tranche_payments_settled_total", method="sandbox") == 1
    assert value(after, "tranche_refunds_total") == 0
    assert value(after, "tranche_webhook_events", outcome="ignored") == 1
    assert value(after, "tranche_webhook_events", outcome="waiting") == 1
    assert value(after, "tranche_webhook_events", outcome="settled") == 0
    sent = OutboxEmail.objects.filter(status=OutboxStatus.SENT).count()
    assert sent >= 2  # the other invoice email, the receipt (and the admins' notice)
    assert value(after, "tranche_email_outbox", status="sent") == sent
    assert value(after, "tranche_email_outbox", status="pending") == 2  # retried and stuck
    assert value(after, "tranche_email_outbox", status="failed") == 0
    assert value(after, "tranche_email_outbox_depth") == 2
    assert value(after, "tranche_email_retrying") == 1
    assert value(after, "tranche_email_stuck") == 1
    assert value(after, "tranche_task_queue_depth") == 1
    assert 90 <= value(after, "tranche_task_queue_oldest_age_seconds") < 120

    # HTTP: by route, never by path (the pay token is not in the scrape), with latency.
    route = {"route": "/pay/<str:token>"}
    for method, status, count in (("GET", "200", 1), ("POST", "302", 1)):
        key = {**route, "method": method, "status": status}
        assert (
            value(after, "tranche_http_requests_total", **key)
            - value(before, "tranche_http_requests_total", **key)
            == count
        )
    timed = {**route, "method": "GET"}
    assert (
        value(after, "tranche_http_request_duration_seconds_count", **timed)
        - value(before, "tranche_http_request_duration_seconds_count", **timed)
        == 1
    )
    webhook = {"route": "/api/webhooks/stripe", "method": "POST", "status": "200"}
    assert (
        value(after, "tranche_http_requests_total", **webhook)
        - value(before, "tranche_http_requests_total", **webhook)
        == 3
    )
    text = Client().get("/metrics", headers=SCRAPE).content.decode()
    assert first.pay_token
    assert first.pay_token not in text
