"""Payment provider faults at every call Tranche makes to it, against the fake Stripe over
real HTTP: an error answer (500), a refusal (4xx), a timeout, a dropped connection and a
lost response (the provider did it, the answer never came), at create (send), update
(amount change), cancel and retrieve (pay page, its return page, reconcile).

After every fault, and again once it clears: never two live PaymentIntents for an
invoice (counted at the provider), never a card charged other than the amount due, and
the invoice ends where it should (sent, in step, cancelled, paid) by retrying the action
or by the periodic pass and reconcile."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.fakes.stripe_server import FAULT_KINDS, FakeStripe, FaultKind
from tests.figures import record
from tests.helpers import AfterCommit, Api, db_state
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.reconcile import reconcile_payments
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.trust]

SECRET = re.compile(r"pi_[0-9a-f]+_secret_[0-9a-f]+")
TODAY = timezone.localdate().isoformat()

# What the module saw, for the figures: faults met per operation, and the outcomes.
FIGURES: dict[str, Any] = {
    "faults": Counter(),
    "double_intents": 0,
    "wrong_amount_charges": 0,
    "charges": 0,
}


@pytest.fixture(autouse=True, scope="module")
def _figures() -> Iterator[None]:
    yield
    faults: Counter[str] = FIGURES["faults"]
    record(
        "faults",
        provider_faults_injected=sum(faults.values()),
        provider_fault_kinds=list(FAULT_KINDS),
        provider_calls_covered=sorted({op for op, _ in (k.split(":") for k in faults)} - {"all"}),
        provider_calls_refused_whole_server=faults["all:refused"],
        provider_faults_by_call=dict(sorted(faults.items())),
        double_intents=FIGURES["double_intents"],
        wrong_amount_charges=FIGURES["wrong_amount_charges"],
        provider_charges_checked=FIGURES["charges"],
    )


@pytest.fixture
def fake(fake_stripe: FakeStripe, settings: Any) -> Iterator[FakeStripe]:
    # A short client timeout keeps the timeouts and lost answers quick; the fake answers
    # well after it.
    settings.STRIPE_TIMEOUT_SECONDS = 0.3
    fake_stripe.hang_seconds = 0.8
    yield fake_stripe
    for operation, kind in fake_stripe.faults_met:
        FIGURES["faults"][f"{operation}:{kind}"] += 1


def one_live_intent_at_most(fake: FakeStripe, invoice: Invoice) -> list[dict[str, Any]]:
    live = fake.live_intents(invoice.pk)
    if len(live) > 1:
        FIGURES["double_intents"] += 1
    assert len(live) <= 1, live
    return live


def pay_at_provider(fake: FakeStripe, intent: dict[str, Any], invoice: Invoice) -> None:
    """The customer confirms the intent the pay page handed out: it must charge exactly
    what the invoice asks now."""
    invoice.refresh_from_db()
    charged = fake.pay(intent["id"])
    FIGURES["charges"] += 1
    if charged["amount_received"] != invoice.due.minor_units:
        FIGURES["wrong_amount_charges"] += 1
    assert charged["amount_received"] == invoice.due.minor_units


def pay_page(invoice: Invoice) -> tuple[int, str]:
    assert invoice.pay_token
    response = Client().get(f"/pay/{invoice.pay_token}")
    return response.status_code, response.content.decode()


def handed_out(fake: FakeStripe, page: str) -> dict[str, Any] | None:
    """The intent whose client secret the page carries, if any."""
    secrets = set(SECRET.findall(page))
    assert len(secrets) <= 1
    return fake.intent_with_secret(secrets.pop()) if secrets else None


def check_pay_page(fake: FakeStripe, invoice: Invoice) -> dict[str, Any] | None:
    """The page answers (never a server error) and hands out an intent only for the
    amount due now."""
    status, page = pay_page(invoice)
    assert status == 200
    intent = handed_out(fake, page)
    invoice.refresh_from_db()
    if intent is not None:
        assert intent["amount"] == invoice.due.minor_units
        assert intent["status"] == "requires_payment_method"
    else:
        assert "payment-element" not in page
    return intent


def comparable(state: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    state = {k: v for k, v in state.items() if k != "billing.invoiceevent"}
    state["billing.invoicetaxline"] = [
        {k: v for k, v in row.items() if k != "id"} for row in state["billing.invoicetaxline"]
    ]
    return state


def send_path(invoice: Invoice) -> str:
    return f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}/send"


def invoice_path(invoice: Invoice) -> str:
    return f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}"


@pytest.fixture
def admin_api(as_: Callable[[str], Api]) -> Api:
    return as_("admin")


@pytest.mark.parametrize("edited", [False, True], ids=["retried", "edited-then-retried"])
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_send_through_a_create_fault_ends_with_one_intent_for_the_amount_due(
    kind: FaultKind,
    edited: bool,
    fake: FakeStripe,
    admin_api: Api,
    project_a: Project,
    admin: User,
) -> None:
    draft = draft_for(project_a, 1, admin)
    fake.inject("create", kind)

    failed = admin_api.post(send_path(draft))

    assert (failed.status, failed.body["code"]) == (502, "payment_provider_error")
    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.pay_token) == (InvoiceStatus.DRAFT, None, None)
    # Only a lost answer leaves an intent at the provider; the invoice knows none.
    assert len(fake.live_intents(draft.pk)) == (1 if kind == "lost" else 0)
    if edited:
        # The admin changes the draft before trying again: another amount, another key.
        changed = admin_api.patch(invoice_path(draft), {"amount": "250.00"})
        assert changed.status == 200, changed.body

    fake.clear()
    sent = admin_api.post(send_path(draft))

    assert sent.status == 200, sent.body
    draft.refresh_from_db()
    [live] = one_live_intent_at_most(fake, draft)
    assert live["id"] == draft.provider_reference
    assert live["amount"] == draft.due.minor_units == (25000 if edited else 30000)
    intent = check_pay_page(fake, draft)
    assert intent is not None
    assert intent["id"] == draft.provider_reference
    pay_at_provider(fake, intent, draft)
    Client().get(f"/pay/{draft.pay_token}/done")
    draft.refresh_from_db()
    assert (draft.status, draft.amount_paid) == (InvoiceStatus.PAID, draft.amount)
    one_live_intent_at_most(fake, draft)


@pytest.fixture
def sent(project_a: Project, admin: User, fake: FakeStripe) -> Invoice:
    """A $300.00 invoice sent through Stripe (its email left queued: no PDF is made)."""
    return invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_an_amount_change_through_an_update_fault_never_hands_out_the_old_amount(
    kind: FaultKind,
    sent: Invoice,
    fake: FakeStripe,
    admin_api: Api,
    after_commit: AfterCommit,
) -> None:
    fake.inject("update", kind)
    payments = f"/api/projects/{sent.project_id}/invoices/{sent.pk}/payments"
    transfer = {"amount": "100.00", "method": "bank_transfer", "received_on": TODAY}

    with after_commit(execute=True):
        recorded = admin_api.post(payments, transfer)

    # The payment stands whatever the provider did; the intent is fixed up later.
    assert recorded.status == 201, recorded.body
    sent.refresh_from_db()
    assert sent.amount_due == Decimal("200.00")
    one_live_intent_at_most(fake, sent)
    check_pay_page(fake, sent)  # during the fault: the page hands out nothing else

    fake.clear()
    run_periodic(now=timezone.now())
    sent.refresh_from_db()
    assert sent.intent_out_of_step is False
    [live] = one_live_intent_at_most(fake, sent)
    assert live["amount"] == 20000
    intent = check_pay_page(fake, sent)
    assert intent is not None
    pay_at_provider(fake, intent, sent)
    Client().get(f"/pay/{sent.pay_token}/done")
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid) == (InvoiceStatus.PAID, Decimal("300.00"))


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_cancel_through_a_cancel_fault_is_refused_and_a_retry_cancels_once(
    kind: FaultKind,
    sent: Invoice,
    fake: FakeStripe,
    admin_api: Api,
) -> None:
    fake.inject("cancel", kind)
    cancel = f"/api/projects/{sent.project_id}/invoices/{sent.pk}/cancel"

    before = db_state()
    refused = admin_api.post(cancel, {"reason": "Billed twice"})

    assert (refused.status, refused.body["code"]) == (502, "payment_provider_error")
    assert db_state() == before
    one_live_intent_at_most(fake, sent)
    # A lost answer cancelled the intent all the same: the page then offers no card.
    intent = check_pay_page(fake, sent)
    assert (intent is None) == (kind == "lost")

    fake.clear()
    done = admin_api.post(cancel, {"reason": "Billed twice"})

    assert done.status == 200, done.body
    sent.refresh_from_db()
    assert sent.status == InvoiceStatus.CANCELLED
    assert fake.live_intents(sent.pk) == []
    assert fake.intents[sent.provider_reference or ""]["status"] == "canceled"


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_missed_payment_through_a_retrieve_fault_is_settled_once_it_clears(
    kind: FaultKind, sent: Invoice, fake: FakeStripe
) -> None:
    # The customer paid, and the webhook never came.
    intent = check_pay_page(fake, sent)
    assert intent is not None
    pay_at_provider(fake, intent, sent)
    fake.inject("retrieve", kind)
    later = timezone.now() + timedelta(hours=2)

    before = db_state()
    checked, lines = reconcile_payments(now=later)
    status, page = pay_page(sent)
    done = Client().get(f"/pay/{sent.pay_token}/done")

    assert (checked, len(lines)) == (1, 1)
    assert "could not ask the provider" in lines[0]
    assert status == 200
    assert "Online payment is unavailable right now" in page
    assert handed_out(fake, page) is None
    assert done.status_code == 302
    assert db_state() == before

    fake.clear()
    checked, lines = reconcile_payments(now=later)
    sent.refresh_from_db()
    assert (sent.status, sent.amount_paid) == (InvoiceStatus.PAID, Decimal("300.00"))
    assert reconcile_payments(now=later) == (0, [])
    assert sent.payments.count() == 1
    one_live_intent_at_most(fake, sent)


def test_a_provider_that_refuses_every_connection_changes_nothing_and_is_caught_up(
    fake: FakeStripe, admin_api: Api, project_a: Project, admin: User, sent: Invoice
) -> None:
    """A true ECONNREFUSED: the provider's server is gone, not one operation."""
    draft = draft_for(project_a, 2, admin)
    fake.stop_listening()
    try:
        before = db_state()
        assert admin_api.post(send_path(draft)).status == 502
        cancel = f"/api/projects/{sent.project_id}/invoices/{sent.pk}/cancel"
        assert admin_api.post(cancel, {"reason": "Wrong"}).status == 502
        status, page = pay_page(sent)
        assert status == 200
        assert "Online payment is unavailable right now" in page
        assert reconcile_payments(now=timezone.now() + timedelta(hours=2))[0] == 1
        # Only the failed send's audit event was written (and the draft, addressed again
        # when the send claimed it, has the same tax lines under new ids).
        assert comparable(db_state()) == comparable(before)
    finally:
        fake.start_listening()
    FIGURES["faults"]["all:refused"] += 4
    assert admin_api.post(send_path(draft)).status == 200
    draft.refresh_from_db()
    [live] = one_live_intent_at_most(fake, draft)
    assert live["amount"] == draft.due.minor_units
