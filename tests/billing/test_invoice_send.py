"""Sending a draft: a number from the gap-free sequence, a PaymentIntent, an email."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.concurrency import at_once
from tests.factories import make_project
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import REFUSED_ADMIN_ONLY, AfterCommit, Api, unchanged
from tranche.accounts.models import Customer, User
from tranche.accounts.services import token_create
from tranche.billing.models import Invoice, InvoiceNumberSequence, InvoiceStatus
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

YEAR = timezone.localdate().year


def send_path(invoice: Invoice) -> str:
    return f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}/send"


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_who_may_not_send(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    persona: str,
    status: int,
    code: str,
) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_(persona)
    with unchanged():
        response = api.post(send_path(draft))
    assert response.status == status
    assert response.body["code"] == code
    assert mail.outbox == []


def test_only_an_admin_sends(as_: Callable[[str], Api], project_a: Project, admin: User) -> None:
    draft = draft_for(project_a, 1, admin)
    response = as_("admin").post(send_path(draft))
    assert response.status == 200
    assert response.body["invoice"]["status"] == "pending"
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PENDING
    assert draft.number == f"INV-{YEAR}-00001"


def test_sending_in_the_sandbox_numbers_the_invoice_and_emails_the_customer(
    as_: Callable[[str], Api], project_a: Project, admin: User, after_commit: AfterCommit
) -> None:
    draft = draft_for(project_a, 1, admin)
    with after_commit(execute=True):
        response = as_("admin").post(send_path(draft))

    assert response.status == 200
    assert response.body["message"] == "Invoice sent successfully."
    invoice = response.body["invoice"]
    today = timezone.localdate()
    stored = Invoice.objects.get()
    assert invoice["number"] == f"INV-{YEAR}-00001"
    assert invoice["status"] == "pending"
    assert invoice["issue_date"] == today.isoformat()
    assert invoice["due_date"] == (today + timedelta(days=14)).isoformat()
    assert invoice["payment_gateway"] == "sandbox"
    assert invoice["stripe_payment_intent_id"] is None
    assert (stored.provider_reference or "").startswith("sandbox_")
    assert invoice["payment_link"] == f"http://testserver/pay/{stored.pay_token}"
    assert len(stored.pay_token or "") >= 40
    assert invoice["sent_at"] is not None
    assert stored.sent_by == admin

    [email] = mail.outbox
    assert email.to == ["accounts@acme.example"]
    assert (
        email.subject == f"Invoice INV-{YEAR}-00001 from Harbour Build Co: $300.00 due "
        f"{stored.due_date:%b %-d, %Y}"
    )
    assert invoice["payment_link"] in email.body
    assert "sandbox" in email.body
    assert OutboxEmail.objects.get().status == "sent"


def test_a_due_date_the_admin_set_on_the_draft_is_kept(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    due = (timezone.localdate() + timedelta(days=45)).isoformat()
    as_("admin").patch(f"/api/projects/{project_a.pk}/invoices/{draft.pk}", {"due_date": due})
    assert as_("admin").post(send_path(draft)).body["invoice"]["due_date"] == due


def test_sending_through_stripe_creates_one_payment_intent(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    fake_stripe: FakeStripe,
    after_commit: AfterCommit,
) -> None:
    draft = draft_for(project_a, 3, admin)
    with after_commit(execute=True):
        response = as_("admin").post(send_path(draft))

    assert response.status == 200, response.body
    [intent] = fake_stripe.intents.values()
    [request] = fake_stripe.create_requests
    assert request["amount"] == "40000"
    assert request["currency"] == "usd"
    assert request["receipt_email"] == "accounts@acme.example"
    assert request["metadata"] == {
        "invoice_id": str(draft.pk),
        "project_id": str(project_a.pk),
        "customer_id": str(project_a.customer_id),
    }
    [key] = fake_stripe.idempotency_keys
    assert key.startswith(f"tranche:testserver:invoice:{draft.pk}:send:40000USD:")
    assert response.body["invoice"]["stripe_payment_intent_id"] == intent["id"]
    # after commit the intent learns the invoice number
    assert intent["metadata"]["invoice_number"] == f"INV-{YEAR}-00001"
    assert intent["description"].startswith(f"INV-{YEAR}-00001")
    [email] = mail.outbox
    assert isinstance(email, EmailMultiAlternatives)
    html = str(email.alternatives[0][0])
    for text in (email.body, html, email.subject):
        assert intent["client_secret"] not in text
        assert "secret" not in text.lower()


@pytest.mark.parametrize(
    "break_provider",
    [
        lambda fake, settings: setattr(fake, "mode", "error"),
        lambda fake, settings: setattr(fake, "mode", "hang"),
        lambda fake, settings: setattr(fake, "mode", "declined_key"),
        lambda fake, settings: setattr(settings, "STRIPE_API_BASE", "http://127.0.0.1:9"),
    ],
    ids=["error", "hang", "declined_key", "refused"],
)
def test_when_the_provider_fails_the_invoice_stays_an_unnumbered_draft(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    fake_stripe: FakeStripe,
    settings: object,
    break_provider: Callable[[FakeStripe, object], None],
) -> None:
    draft = draft_for(project_a, 1, admin)
    break_provider(fake_stripe, settings)

    response = as_("admin").post(send_path(draft))

    assert response.status == 502
    assert response.body["code"] == "payment_provider_error"
    assert "still a draft" in response.body["detail"]
    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.pay_token, draft.send_claimed_at) == (
        InvoiceStatus.DRAFT,
        None,
        None,
        None,
    )
    assert OutboxEmail.objects.count() == 0
    assert mail.outbox == []
    assert not InvoiceNumberSequence.objects.filter(last_number__gt=0).exists()
    assert draft.events.last().kind == "send_failed"  # type: ignore[union-attr]

    # Once the provider is back, the same draft sends and takes the first number.
    fake_stripe.mode = "ok"
    settings.STRIPE_API_BASE = fake_stripe.url  # type: ignore[attr-defined]
    retry = as_("admin").post(send_path(draft))
    assert retry.status == 200
    assert retry.body["invoice"]["number"] == f"INV-{YEAR}-00001"
    assert fake_stripe.created == 1


def test_a_lost_response_is_retried_with_the_same_key_and_makes_one_intent(
    as_: Callable[[str], Api], project_a: Project, admin: User, fake_stripe: FakeStripe
) -> None:
    draft = draft_for(project_a, 1, admin)
    fake_stripe.mode = "lose_response"
    response = as_("admin").post(send_path(draft))
    assert response.status == 200
    assert fake_stripe.created == 1
    assert len(set(fake_stripe.idempotency_keys)) == 1
    assert len(fake_stripe.idempotency_keys) == 2


@pytest.mark.parametrize(
    "edit", [{"amount": "250.00"}, {"description": "Step 1, revised"}], ids=["amount", "text"]
)
def test_a_send_whose_answer_was_lost_and_the_draft_edited_ends_with_one_live_intent(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    fake_stripe: FakeStripe,
    settings: Any,
    edit: dict[str, str],
) -> None:
    """Stripe made the intent but the answer never came (nor to the SDK's retry); the
    admin then edits the draft, so the next send asks under another key. The lost intent
    is found under its own key and cancelled: the invoice has one live intent."""
    settings.STRIPE_TIMEOUT_SECONDS = 0.3
    fake_stripe.hang_seconds = 0.8
    draft = draft_for(project_a, 1, admin)
    api = as_("admin")
    fake_stripe.inject("create", "lost")
    assert api.post(send_path(draft)).status == 502
    [lost] = fake_stripe.live_intents(draft.pk)
    assert api.patch(f"/api/projects/{project_a.pk}/invoices/{draft.pk}", edit).status == 200

    fake_stripe.clear()
    response = api.post(send_path(draft))

    assert response.status == 200, response.body
    draft.refresh_from_db()
    [live] = fake_stripe.live_intents(draft.pk)
    assert live["id"] == draft.provider_reference != lost["id"]
    assert live["amount"] == draft.due.minor_units
    assert fake_stripe.intents[lost["id"]]["status"] == "canceled"
    withdrawn = draft.events.get(kind="intent_cancelled")
    assert withdrawn.details["provider_reference"] == lost["id"]


def test_a_send_stripe_answered_with_a_500_is_sent_by_the_next_try(
    as_: Callable[[str], Api], project_a: Project, admin: User, fake_stripe: FakeStripe
) -> None:
    """Stripe keeps a 500 as the answer to its idempotency key for a day: the next send
    must ask under a fresh key, or it would meet the same 500 until then."""
    draft = draft_for(project_a, 1, admin)
    api = as_("admin")
    fake_stripe.inject("create", "error")
    assert api.post(send_path(draft)).status == 502

    fake_stripe.clear()
    response = api.post(send_path(draft))

    assert response.status == 200, response.body
    [first, *_, last] = fake_stripe.idempotency_keys
    assert first != last
    assert len(fake_stripe.live_intents(draft.pk)) == 1


def test_numbers_follow_the_order_of_sending_and_a_failed_send_takes_none(
    as_: Callable[[str], Api], project_a: Project, admin: User, fake_stripe: FakeStripe
) -> None:
    first, second, third = (draft_for(project_a, n, admin) for n in (1, 2, 3))
    api = as_("admin")
    assert api.post(send_path(second)).body["invoice"]["number"] == f"INV-{YEAR}-00001"
    fake_stripe.mode = "error"
    assert api.post(send_path(third)).status == 502
    fake_stripe.mode = "ok"
    assert api.post(send_path(first)).body["invoice"]["number"] == f"INV-{YEAR}-00002"
    assert api.post(send_path(third)).body["invoice"]["number"] == f"INV-{YEAR}-00003"


def test_the_number_format_is_configurable(
    as_: Callable[[str], Api], project_a: Project, admin: User, settings: object
) -> None:
    settings.INVOICE_NUMBER_FORMAT = "HB/{year}/{seq}"  # type: ignore[attr-defined]
    draft = draft_for(project_a, 1, admin)
    assert as_("admin").post(send_path(draft)).body["invoice"]["number"] == f"HB/{YEAR}/1"


def test_only_a_draft_can_be_sent(
    as_: Callable[[str], Api], project_a: Project, admin: User, after_commit: AfterCommit
) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_("admin")
    with after_commit(execute=True):
        api.post(send_path(draft))
    with unchanged(), after_commit(execute=True):
        again = api.post(send_path(draft))
    assert (again.status, again.body["code"]) == (409, "invoice_not_draft")
    assert len(mail.outbox) == 1


def test_an_invoice_without_a_customer_email_stays_a_draft(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    customer_a.billing_email = ""
    customer_a.save()
    draft = draft_for(make_project(actor=admin, customer=customer_a), 1, admin)
    api = as_("admin")
    with unchanged():
        response = api.post(send_path(draft))
    assert (response.status, response.body["code"]) == (422, "customer_email_missing")


def test_without_stripe_or_sandbox_sending_is_refused(
    as_: Callable[[str], Api], project_a: Project, admin: User, settings: object
) -> None:
    settings.PAYMENTS_SANDBOX = False  # type: ignore[attr-defined]
    settings.DEBUG = False  # type: ignore[attr-defined]
    draft = draft_for(project_a, 1, admin)
    api = as_("admin")
    with unchanged():
        response = api.post(send_path(draft))
    assert (response.status, response.body["code"]) == (502, "payment_provider_unconfigured")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_sends_send_once(
    admin: User, customer_a: Customer, fake_stripe: FakeStripe
) -> None:
    project = make_project(actor=admin, customer=customer_a)
    draft = draft_for(project, 1, admin)
    token = token_create(user=admin)

    results = at_once(10, lambda: Api(token).post(send_path(draft)))

    statuses = sorted(r.status for r in results)  # type: ignore[union-attr]
    assert statuses == [200] + [409] * 9
    codes = {r.body["code"] for r in results if r.status == 409}  # type: ignore[union-attr]
    assert codes <= {"invoice_send_in_progress", "invoice_not_draft"}
    assert fake_stripe.created == 1
    assert Invoice.objects.get().number == f"INV-{YEAR}-00001"
    assert InvoiceNumberSequence.objects.get().last_number == 1
    assert OutboxEmail.objects.count() == 1
    assert len(mail.outbox) == 1


def test_bulk_send_reports_each_invoice_and_one_failure_stops_nothing(
    as_: Callable[[str], Api],
    project_a: Project,
    project_b: Project,
    admin: User,
    after_commit: AfterCommit,
) -> None:
    ok_one = draft_for(project_a, 1, admin)
    sent_already = draft_for(project_a, 2, admin)
    ok_two = draft_for(project_b, 1, admin)
    api = as_("admin")
    with after_commit(execute=True):
        api.post(send_path(sent_already))
        response = api.post(
            "/api/invoices/send", {"invoice_ids": [ok_one.pk, sent_already.pk, 999999, ok_two.pk]}
        )

    assert response.status == 200
    results = response.body["results"]
    assert [(r["invoice_id"], r["ok"], r["code"]) for r in results] == [
        (ok_one.pk, True, None),
        (sent_already.pk, False, "invoice_not_draft"),
        (999999, False, "invoice_not_found"),
        (ok_two.pk, True, None),
    ]
    assert results[0]["invoice"]["number"] == f"INV-{YEAR}-00002"
    assert results[3]["invoice"]["number"] == f"INV-{YEAR}-00003"
    assert len(mail.outbox) == 3


@pytest.mark.parametrize(
    "body", [{}, {"invoice_ids": []}, {"invoice_ids": ["x"]}, {"invoice_ids": [0]}]
)
def test_bulk_send_refuses_bad_bodies(as_: Callable[[str], Api], body: dict[str, object]) -> None:
    api = as_("admin")
    with unchanged():
        assert api.post("/api/invoices/send", body).status == 422


def test_staff_cannot_bulk_send(as_: Callable[[str], Api], project_a: Project, admin: User) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_("staff")
    with unchanged():
        assert api.post("/api/invoices/send", {"invoice_ids": [draft.pk]}).status == 403


def test_a_bulk_send_takes_up_to_a_thousand_ids(as_: Callable[[str], Api]) -> None:
    """One request may name 1,000 drafts (the ids here exist not: each is refused alone);
    1,001 is refused whole."""
    api = as_("admin")
    response = api.post("/api/invoices/send", {"invoice_ids": list(range(1, 1001))})
    assert response.status == 200
    assert {r["code"] for r in response.body["results"]} == {"invoice_not_found"}
    with unchanged():
        assert api.post("/api/invoices/send", {"invoice_ids": list(range(1, 1002))}).status == 422


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_years_first_sends_at_once_number_without_gaps_or_repeats(
    admin: User, customer_a: Customer
) -> None:
    """Six admins send six drafts at the same moment, before the year has a number: one
    makes the year's row, the others wait for it, and the numbers are 1 to 6."""
    project = make_project(
        actor=admin, customer=customer_a, percentages=("10", "10", "20", "20", "20", "20")
    )
    drafts = [draft_for(project, position, admin) for position in range(1, 7)]
    token = token_create(user=admin)
    assert not InvoiceNumberSequence.objects.exists()

    pending, taking = list(drafts), threading.Lock()

    def send_one() -> Any:
        with taking:
            draft = pending.pop()
        return Api(token).post(send_path(draft))

    results = at_once(6, send_one)

    assert [r.status for r in results] == [200] * 6  # type: ignore[union-attr]
    numbers = sorted(n or "" for n in Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{YEAR}-{n:05d}" for n in range(1, 7)]
    assert InvoiceNumberSequence.objects.get().last_number == 6
