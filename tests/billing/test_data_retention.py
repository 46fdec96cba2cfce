"""Data retention: the periodic pass blanks Stripe event payloads after
RETENTION_STRIPE_EVENT_DAYS and sent emails' bodies after RETENTION_EMAIL_BODY_DAYS, a
bounded batch per pass, and never touches the books: invoices, credit notes, payments and
their events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.helpers import db_state
from tranche.billing.models import StripeEvent
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.retention import data_retention_purge
from tranche.billing.webhooks import events_retry, webhook_receive
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.web.demo import load_demo

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def retention(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]
    settings.RETENTION_STRIPE_EVENT_DAYS = 90
    settings.RETENTION_EMAIL_BODY_DAYS = 365


def stripe_event(days_ago: int, kind: str = "customer.created") -> StripeEvent:
    """An event Stripe delivered `days_ago` days ago, processed then (ignored: Tranche
    does nothing with customer.created)."""
    payload = events.event(kind, {"id": f"cus_{days_ago}", "object": "customer"})
    webhook_receive(
        payload=payload.encode(),
        signature=events.sign(payload),
        now=NOW - timedelta(days=days_ago),
    )
    return StripeEvent.objects.get(event_id=json.loads(payload)["id"])


def email(days_ago: int, status: str = OutboxStatus.SENT, key: str = "") -> OutboxEmail:
    at = NOW - timedelta(days=days_ago)
    return OutboxEmail.objects.create(
        key=key or f"invoice_sent:{days_ago}:{status}",
        kind="invoice_sent",
        to="accounts@acme.example",
        subject=f"Invoice sent {days_ago} days ago",
        body_text="Dear Acme, your invoice…",
        body_html="<p>Dear Acme, your invoice…</p>",
        attachments=[{"kind": "invoice_pdf", "invoice_id": 7}],
        status=status,
        next_attempt_at=at,
        sent_at=at if status == OutboxStatus.SENT else None,
        created_at=at,
    )


def fields(row: Any, *names: str) -> tuple[Any, ...]:
    row.refresh_from_db()
    return tuple(getattr(row, name) for name in names)


def test_a_stripe_payload_past_its_retention_is_blanked_and_the_event_kept() -> None:
    old, recent = stripe_event(days_ago=91), stripe_event(days_ago=89)
    kept = ("event_id", "event_type", "received_at", "processed_at", "attempts", "outcome")
    old_before, recent_before = fields(old, *kept), recent.payload

    report = data_retention_purge(now=NOW)

    assert (report.stripe_payloads, report.email_bodies, report.failed) == (1, 0, 0)
    assert fields(old, "payload") == ({},)
    assert fields(old, *kept) == old_before
    assert fields(recent, "payload") == (recent_before,)
    # The redelivery of a purged event is still recognised as one.
    payload = json.dumps({**json.loads(events.event("customer.created", {})), "id": old.event_id})
    assert webhook_receive(payload=payload.encode(), signature=events.sign(payload)) == "duplicate"


def test_an_event_still_waiting_or_given_up_keeps_its_payload() -> None:
    """Both may still be processed (by the worker, or by an admin's retry): they need it."""
    waiting_payload = events.intent_succeeded("pi_unknown", 1000)
    webhook_receive(
        payload=waiting_payload.encode(),
        signature=events.sign(waiting_payload),
        now=NOW - timedelta(days=200),
    )
    waiting = StripeEvent.objects.get()
    assert waiting.processed_at is None
    given_up_payload = events.intent_succeeded("pi_unknown_too", 1000)
    webhook_receive(
        payload=given_up_payload.encode(),
        signature=events.sign(given_up_payload),
        now=NOW - timedelta(days=300),
    )
    events_retry(now=NOW - timedelta(days=290))  # both given up after three days…
    StripeEvent.objects.filter(pk=waiting.pk).update(processed_at=None, outcome="waiting: x")
    before = {row.pk: row.payload for row in StripeEvent.objects.all()}

    report = data_retention_purge(now=NOW)

    assert report.stripe_payloads == 0
    assert {row.pk: row.payload for row in StripeEvent.objects.all()} == before
    assert StripeEvent.objects.exclude(pk=waiting.pk).get().outcome.startswith("gave up: ")


def test_a_sent_email_past_its_retention_keeps_who_what_and_when_but_not_its_body() -> None:
    old, recent = email(days_ago=366), email(days_ago=364)
    pending, failed = email(400, OutboxStatus.PENDING), email(400, OutboxStatus.FAILED)
    kept = ("key", "kind", "to", "subject", "status", "sent_at", "created_at", "attempts")
    old_before = fields(old, *kept)
    bodies = ("body_text", "body_html", "attachments")
    untouched = {row.pk: fields(row, *bodies) for row in (recent, pending, failed)}

    report = data_retention_purge(now=NOW)

    assert (report.stripe_payloads, report.email_bodies, report.failed) == (0, 1, 0)
    assert fields(old, *bodies) == ("", "", [])
    assert fields(old, *kept) == old_before
    assert {row.pk: fields(row, *bodies) for row in (recent, pending, failed)} == untouched


def test_a_retention_of_zero_keeps_everything_for_ever(settings: Any) -> None:
    settings.RETENTION_STRIPE_EVENT_DAYS = 0
    settings.RETENTION_EMAIL_BODY_DAYS = 0
    stripe_event(days_ago=5000)
    email(days_ago=5000)
    before = db_state()

    report = data_retention_purge(now=NOW)

    assert (report.stripe_payloads, report.email_bodies) == (0, 0)
    assert db_state() == before


def test_each_pass_purges_one_bounded_batch_oldest_first() -> None:
    """A first run on years of history blanks `limit` rows per rule and pass (one short
    UPDATE each), and the passes after it take the rest."""
    old_events = [stripe_event(days_ago=100 + n) for n in range(5)]
    old_emails = [email(days_ago=400 + n) for n in range(5)]

    passes = [data_retention_purge(now=NOW, limit=2) for _ in range(4)]

    assert [(p.stripe_payloads, p.email_bodies) for p in passes] == [(2, 2), (2, 2), (1, 1), (0, 0)]
    assert all(fields(row, "payload") == ({},) for row in old_events)
    assert all(fields(row, "body_text") == ("",) for row in old_emails)


def test_the_first_batch_is_the_oldest() -> None:
    older, oldest = stripe_event(days_ago=200), stripe_event(days_ago=300)
    older_email, oldest_email = email(days_ago=400), email(days_ago=500)

    report = data_retention_purge(now=NOW, limit=1)

    assert (report.stripe_payloads, report.email_bodies) == (1, 1)
    assert fields(oldest, "payload") == ({},)
    assert fields(older, "payload") != ({},)
    assert fields(oldest_email, "body_text") == ("",)
    assert fields(older_email, "body_text") != ("",)


def test_the_periodic_pass_reports_what_it_blanked() -> None:
    stripe_event(days_ago=91)
    email(days_ago=366)
    email(days_ago=367, key="another")

    summary = run_periodic(now=NOW)

    assert "1 Stripe payload(s) and 2 email body(ies) past retention blanked, " in summary
    assert summary.endswith(", 0 failure(s)")
    assert "past retention" not in run_periodic(now=NOW)  # nothing left the second time


def test_a_failing_rule_is_logged_and_counted_and_the_other_still_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    stripe_event(days_ago=91)
    email(days_ago=366)

    def broken(**kwargs: Any) -> int:
        raise RuntimeError("stripe events table unavailable")

    monkeypatch.setattr("tranche.billing.services.retention.stripe_payloads_purge", broken)
    summary = run_periodic(now=NOW)

    assert "0 Stripe payload(s) and 1 email body(ies) past retention blanked" in summary
    assert summary.endswith(", 1 failure(s)")
    assert "Purging old Stripe event payloads failed" in caplog.text


BOOKS = (
    "billing.invoice",
    "billing.invoicetaxline",
    "billing.invoiceevent",
    "billing.payment",
    "billing.creditnote",
    "billing.creditnotetaxline",
    "billing.invoicenumbersequence",
    "billing.creditnotenumbersequence",
)


def test_invoices_credit_notes_payments_and_their_events_are_never_purged(
    settings: Any,
) -> None:
    """Everything is years old and the retentions are one day: the books are unchanged,
    row by row, while the payloads and bodies beside them are blanked."""
    settings.RETENTION_STRIPE_EVENT_DAYS = 1
    settings.RETENTION_EMAIL_BODY_DAYS = 1
    long_ago: datetime = NOW - timedelta(days=3000)
    load_demo(now=long_ago)
    stripe_event(days_ago=3000)
    OutboxEmail.objects.update(status=OutboxStatus.SENT, sent_at=long_ago)
    books = {label: rows for label, rows in db_state().items() if label in BOOKS}
    empty = [label for label in BOOKS if not books[label] and "sequence" not in label]
    assert empty == []

    while (report := data_retention_purge(now=NOW)).stripe_payloads or report.email_bodies:
        pass

    assert {label: rows for label, rows in db_state().items() if label in BOOKS} == books
    assert not OutboxEmail.objects.exclude(body_text="").exists()
    assert not StripeEvent.objects.exclude(payload={}).exists()
