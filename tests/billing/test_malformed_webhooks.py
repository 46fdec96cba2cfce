"""Flaw 6: a signed but malformed Stripe event is refused with 400 and stored nowhere;
one stored before events were checked is closed as rejected by the next tick, and the
waiting events behind it still settle."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.billing.helpers import draft_for
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import Api, unchanged
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus, Payment, StripeEvent
from tranche.billing.services.payments import lock_invoice_for_intent
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.sending import invoice_send
from tranche.core.errors import Invalid
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def webhook_secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]


@pytest.fixture
def sent(project_a: Project, admin: User, fake_stripe: FakeStripe) -> Invoice:
    return invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)


def deliver(payload: str) -> tuple[int, dict[str, Any]]:
    response = Client().post(
        "/api/webhooks/stripe",
        payload,
        content_type="application/json",
        headers={"Stripe-Signature": events.sign(payload)},
    )
    return response.status_code, response.json()


def succeeded(intent_id: str | None, **obj: Any) -> dict[str, Any]:
    body = json.loads(events.intent_succeeded("pi_placeholder", 30000))
    body["data"]["object"].update({"id": intent_id, **obj})
    return dict(body)


def refunded(intent_id: str | None, **obj: Any) -> dict[str, Any]:
    body = json.loads(events.charge_refunded("pi_placeholder", 10000))
    body["data"]["object"].update({"payment_intent": intent_id, **obj})
    return dict(body)


def without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


MALFORMED: list[tuple[str, Callable[[str], Any]]] = [
    ("no currency", lambda pi: without(succeeded(pi), "data", "object", "currency")),
    ("unknown currency", lambda pi: succeeded(pi, currency="zzz")),
    ("currency not text", lambda pi: succeeded(pi, currency=840)),
    ("amount of 10^20", lambda pi: succeeded(pi, amount_received=10**20)),
    ("negative amount", lambda pi: succeeded(pi, amount_received=-30000)),
    ("zero amount received", lambda pi: succeeded(pi, amount_received=0)),
    ("amount as text", lambda pi: succeeded(pi, amount_received="30000")),
    ("amount as a fraction", lambda pi: succeeded(pi, amount_received=300.5)),
    ("amount as true", lambda pi: succeeded(pi, amount_received=True)),
    ("no amount", lambda pi: without(succeeded(pi), "data", "object", "amount_received")),
    ("intent id null", lambda pi: succeeded(None)),
    ("intent id a number", lambda pi: succeeded(pi, id=42)),
    ("refund with a null intent", lambda pi: refunded(None)),
    ("refund with an empty intent", lambda pi: refunded("")),
    ("refund of 10^20", lambda pi: refunded(pi, amount_refunded=10**20)),
    ("negative refund", lambda pi: refunded(pi, amount_refunded=-1)),
    ("refund without currency", lambda pi: without(refunded(pi), "data", "object", "currency")),
    ("array body", lambda pi: [succeeded(pi)]),
    ("empty array body", lambda pi: []),
    ("string body", lambda pi: "payment_intent.succeeded"),
    ("null body", lambda pi: None),
    ("no event id", lambda pi: without(succeeded(pi), "id")),
    ("event id a number", lambda pi: {**succeeded(pi), "id": 7}),
    ("no type", lambda pi: without(succeeded(pi), "type")),
    ("no data", lambda pi: without(succeeded(pi), "data")),
    ("data an array", lambda pi: {**succeeded(pi), "data": []}),
    ("no object", lambda pi: without(succeeded(pi), "data", "object")),
    ("object a string", lambda pi: {**succeeded(pi), "data": {"object": "pi"}}),
    (
        "failure with a non-object error",
        lambda pi: {
            **json.loads(events.intent_failed(pi)),
            "data": {"object": {"id": pi, "last_payment_error": "declined"}},
        },
    ),
]


@pytest.mark.parametrize(("case", "build"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_signed_malformed_event_is_400_and_stores_nothing(
    sent: Invoice, case: str, build: Callable[[str], Any]
) -> None:
    assert sent.provider_reference
    payload = json.dumps(build(sent.provider_reference))
    with unchanged():
        status, body = deliver(payload)
    assert status == 400, body
    assert body["code"] == "webhook_malformed"
    assert set(body) == {"detail", "code"}


def test_after_a_refused_huge_amount_the_financial_lists_still_answer(
    sent: Invoice, as_: Callable[[str], Api]
) -> None:
    assert sent.provider_reference
    status, _ = deliver(json.dumps(succeeded(sent.provider_reference, amount_received=10**20)))
    assert status == 400
    for persona in ("admin", "staff", "alice"):
        response = as_(persona).get("/api/invoices")
        assert response.status == 200, persona
        assert [i["amount_due"] for i in response.body["items"]] == ["300.00"]
    response = as_("alice").get(f"/api/projects/{sent.project_id}/invoices")
    assert response.status == 200


def test_an_event_without_a_payment_intent_never_matches_a_draft(
    project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    assert draft.provider_reference is None
    for missing in (None, ""):
        with transaction.atomic(), pytest.raises(Invalid) as refused:
            lock_invoice_for_intent(missing)
        assert refused.value.code == "intent_id_missing"


def _store(payload: dict[str, Any], minutes_ago: int) -> StripeEvent:
    """An event as the webhook stored it before events were checked."""
    return StripeEvent.objects.create(
        event_id=str(payload["id"]),
        event_type=str(payload.get("type", "")),
        payload=payload,
        received_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_a_stored_poisoned_event_is_rejected_and_the_valid_one_behind_it_settles(
    sent: Invoice, project_a: Project, admin: User
) -> None:
    assert sent.provider_reference
    draft = draft_for(project_a, 2, admin)
    no_currency = _store(
        without(succeeded(sent.provider_reference), "data", "object", "currency"), 30
    )
    huge = _store(succeeded(sent.provider_reference, amount_received=10**20), 20)
    null_refund = _store(refunded(None), 15)
    valid = _store(succeeded(sent.provider_reference), 10)

    summary = run_periodic()

    # The three poisoned ones are closed as well: none of them is retried again.
    assert ", 4 waiting webhook event(s) processed, " in summary
    assert summary.endswith(", 0 failure(s)")
    for poisoned in (no_currency, huge, null_refund):
        poisoned.refresh_from_db()
        assert poisoned.processed_at is not None
        assert poisoned.outcome.startswith("rejected: "), poisoned.outcome
    valid.refresh_from_db()
    assert (valid.processed_at is not None, valid.outcome) == (True, "settled")
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid) == (InvoiceStatus.PAID, Decimal(300))
    assert list(Payment.objects.values_list("invoice_id", "amount")) == [(sent.pk, Decimal(300))]
    draft.refresh_from_db()
    assert (draft.status, draft.events.filter(kind__startswith="refund").count()) == (
        InvoiceStatus.DRAFT,
        0,
    )
