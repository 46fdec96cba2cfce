"""The operations admin at /admin/: admins see the outbox, Stripe events, invoice events,
invoices, payments and customers, and retry failed emails and unsettled events; nobody
adds, changes or deletes anything there, and nobody else gets in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.billing.helpers import draft_for
from tests.factories import PASSWORD
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import AfterCommit, unchanged
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceEvent, InvoiceStatus, Payment, StripeEvent
from tranche.billing.services.sending import invoice_send
from tranche.billing.webhooks import events_retry, webhook_receive
from tranche.notifications.delivery import MAX_ATTEMPTS, outbox_deliver_due
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "/admin/notifications/outboxemail/",
    "/admin/billing/stripeevent/",
    "/admin/billing/invoiceevent/",
    "/admin/billing/invoice/",
    "/admin/billing/payment/",
    "/admin/accounts/customer/",
]
PAGES = ["/admin/", *CHANGELISTS]


@pytest.fixture
def browsers(admin: User, staff: User, alice: User, bob: User) -> dict[str, Client]:
    """A browser per persona; the sign-in itself is tested on its own below."""
    signed_in = {}
    for persona, user in {"admin": admin, "staff": staff, "alice": alice, "bob": bob}.items():
        signed_in[persona] = Client()
        signed_in[persona].force_login(user)
    signed_in["anonymous"] = Client()
    return signed_in


@pytest.fixture
def webhook_secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]


def stripe_sends(payload: str) -> str:
    return webhook_receive(payload=payload.encode(), signature=events.sign(payload))


@pytest.fixture
def paid(project_a: Project, admin: User, fake_stripe: FakeStripe, webhook_secret: None) -> Invoice:
    """An invoice sent and paid through Stripe: a row in every list of the admin."""
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    assert stripe_sends(events.intent_succeeded(invoice.provider_reference or "", 30000)) == (
        "settled"
    )
    return invoice


def retry(browser: Client, changelist: str, *rows: Any) -> Any:
    return browser.post(
        changelist,
        {"action": "retry", "index": 0, "_selected_action": [row.pk for row in rows]},
        follow=True,
    )


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- who gets in --------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_an_admin_sees_every_page(path: str, browsers: dict[str, Client], paid: Invoice) -> None:
    response = browsers["admin"].get(path)
    assert response.status_code == 200
    if path != "/admin/":
        # The list shows the row the send wrote (one per model at least).
        assert response.context["cl"].result_count >= 1


@pytest.mark.parametrize("persona", ["staff", "alice", "bob"])
@pytest.mark.parametrize("path", PAGES)
def test_staff_and_customers_are_refused_every_page(
    persona: str, path: str, browsers: dict[str, Client], paid: Invoice
) -> None:
    with unchanged():
        response = browsers[persona].get(path)
    assert response.status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_a_visitor_is_sent_to_the_sign_in_page(path: str, browsers: dict[str, Client]) -> None:
    with unchanged():
        response = browsers["anonymous"].get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_only_an_admin_s_portal_pages_link_to_the_admin(browsers: dict[str, Client]) -> None:
    """Through the Operations page (Settings → Operations), whose footer opens the admin."""
    link = '<a href="/settings/operations/">Operations</a>'
    assert link in browsers["admin"].get("/projects/").content.decode()
    operations = browsers["admin"].get("/settings/operations/").content.decode()
    assert '<a href="/admin/">operations admin</a>' in operations
    for persona in ("staff", "alice"):
        page = browsers[persona].get("/projects/").content.decode()
        assert link not in page
        assert 'href="/admin/"' not in page


def test_an_admin_signs_in_on_the_one_sign_in_page_and_lands_in_the_admin(admin: User) -> None:
    browser = Client()
    to_login = browser.get("/admin/billing/stripeevent/", follow=True)
    assert to_login.redirect_chain == [("/login/?next=/admin/billing/stripeevent/", 302)]

    signed_in = browser.post(
        "/login/?next=/admin/billing/stripeevent/",
        {"username": "Admin@Tranche.example", "password": PASSWORD},
    )
    assert signed_in["Location"] == "/admin/billing/stripeevent/"
    assert browser.get("/admin/billing/stripeevent/").status_code == 200


def test_django_s_own_admin_login_form_signs_nobody_in(admin: User) -> None:
    browser = Client()
    with unchanged():
        posted = browser.post("/admin/login/", {"username": admin.email, "password": PASSWORD})
    assert (posted.status_code, posted["Location"]) == (302, "/login/?next=/admin/")
    assert browser.get("/admin/")["Location"] == "/login/?next=/admin/"


def test_failed_sign_ins_on_the_way_to_the_admin_lock_the_admin_out(admin: User) -> None:
    browser = Client()

    def sign_in(password: str) -> int:
        form = {"username": admin.email, "password": password}
        return browser.post("/login/?next=/admin/", form).status_code

    assert [sign_in("guess") for _ in range(5)] == [200, 200, 200, 200, 429]
    with unchanged():
        assert sign_in(PASSWORD) == 429
    assert browser.get("/admin/")["Location"] == "/login/?next=/admin/"


def test_a_deactivated_admin_is_refused(admin: User, browsers: dict[str, Client]) -> None:
    User.objects.filter(pk=admin.pk).update(is_active=False)
    with unchanged():
        response = browsers["admin"].get("/admin/")
    # Django's session check no longer finds an active user: signed out, sent to sign in.
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/admin/"


# --- read-only ----------------------------------------------------------------------------


def test_the_admin_offers_no_add_change_or_delete(
    browsers: dict[str, Client], paid: Invoice
) -> None:
    for path in CHANGELISTS:
        page = browsers["admin"].get(path).content.decode()
        assert "/add/" not in page
        assert "delete_selected" not in page
    detail = browsers["admin"].get(f"/admin/billing/invoice/{paid.pk}/change/").content.decode()
    assert paid.number
    assert paid.pay_token
    assert paid.number in detail
    assert 'name="_save"' not in detail
    assert "/delete/" not in detail
    assert paid.pay_token not in detail  # the customer's credential to pay is not shown


def _change_post(model: Any) -> dict[str, str]:
    return {field.name: "changed" for field in model._meta.concrete_fields if field.name != "id"}


# A bulk delete is not an action on any list. Where the list has actions (Retry), Django
# answers "No action selected." and redirects; where it has none, it shows the list again.
@pytest.mark.parametrize(
    ("model", "path", "bulk_delete_status"),
    [
        (OutboxEmail, "/admin/notifications/outboxemail/", 302),
        (StripeEvent, "/admin/billing/stripeevent/", 302),
        (InvoiceEvent, "/admin/billing/invoiceevent/", 200),
        (Invoice, "/admin/billing/invoice/", 200),
        (Payment, "/admin/billing/payment/", 200),
        (Customer, "/admin/accounts/customer/", 200),
    ],
)
def test_nothing_can_be_added_changed_or_deleted(
    model: Any,
    path: str,
    bulk_delete_status: int,
    browsers: dict[str, Client],
    paid: Invoice,
) -> None:
    row = model.objects.order_by("pk").first()
    assert row is not None
    admin = browsers["admin"]

    with unchanged():
        assert admin.post(f"{path}add/", _change_post(model)).status_code == 403
        assert admin.post(f"{path}{row.pk}/change/", _change_post(model)).status_code == 403
        assert admin.post(f"{path}{row.pk}/delete/", {"post": "yes"}).status_code == 403
        bulk = admin.post(
            path, {"action": "delete_selected", "index": 0, "_selected_action": [row.pk]}
        )
        assert bulk.status_code == bulk_delete_status
    assert admin.get(f"{path}{row.pk}/change/").status_code == 200  # viewing is allowed


def test_passwords_are_not_changed_through_the_admin(browsers: dict[str, Client]) -> None:
    admin = browsers["admin"]
    assert "Change password" not in admin.get("/admin/").content.decode()
    with unchanged():
        posted = admin.post(
            "/admin/password_change/",
            {"old_password": PASSWORD, "new_password1": "x" * 20, "new_password2": "x" * 20},
        )
    assert posted.status_code == 404


# --- retrying a failed email --------------------------------------------------------------


@pytest.fixture
def failed_email(project_a: Project, admin: User, smtp: SmtpServer) -> OutboxEmail:
    """The invoice email, after every attempt failed while SMTP was down."""
    smtp.stop()
    invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    email = OutboxEmail.objects.get()
    for _ in range(MAX_ATTEMPTS):
        assert outbox_deliver_due(now=email.next_attempt_at) == 0
        email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboxStatus.FAILED, MAX_ATTEMPTS)
    smtp.start()
    return email


def test_an_admin_retries_a_failed_email_and_it_is_delivered(
    failed_email: OutboxEmail,
    browsers: dict[str, Client],
    smtp: SmtpServer,
    after_commit: AfterCommit,
) -> None:
    with after_commit(execute=True):
        response = retry(browsers["admin"], "/admin/notifications/outboxemail/", failed_email)

    assert messages_of(response) == ["1 failed email(s) will be sent again."]
    failed_email.refresh_from_db()
    assert (failed_email.status, failed_email.attempts) == (OutboxStatus.SENT, 1)
    [message] = smtp.messages
    assert message["To"] == "accounts@acme.example"
    assert message["Subject"] == failed_email.subject


def test_a_retry_leaves_emails_that_did_not_fail_alone(
    failed_email: OutboxEmail,
    project_b: Project,
    admin: User,
    browsers: dict[str, Client],
    smtp: SmtpServer,
    after_commit: AfterCommit,
) -> None:
    invoice_send(actor=admin, invoice_id=draft_for(project_b, 1, admin).pk)
    pending = OutboxEmail.objects.exclude(pk=failed_email.pk).get()
    # Waiting for its next attempt after a timeout: not due, so no delivery touches it,
    # and a retry that reset it would show.
    OutboxEmail.objects.filter(pk=pending.pk).update(
        attempts=1,
        last_error="TimeoutError: timed out",
        next_attempt_at=timezone.now() + timedelta(minutes=30),
    )
    before = OutboxEmail.objects.filter(pk=pending.pk).values().get()

    with after_commit(execute=True):
        response = retry(
            browsers["admin"], "/admin/notifications/outboxemail/", failed_email, pending
        )

    assert messages_of(response) == [
        "1 failed email(s) will be sent again. 1 not failed were left as they are."
    ]
    assert OutboxEmail.objects.filter(pk=pending.pk).values().get() == before
    assert [m["To"] for m in smtp.messages] == ["accounts@acme.example"]


def test_staff_cannot_retry_a_failed_email(
    failed_email: OutboxEmail, browsers: dict[str, Client], after_commit: AfterCommit
) -> None:
    with unchanged(), after_commit(execute=True):
        response = browsers["staff"].post(
            "/admin/notifications/outboxemail/",
            {"action": "retry", "index": 0, "_selected_action": [failed_email.pk]},
        )
    assert response.status_code == 403


# --- retrying a Stripe event --------------------------------------------------------------


@pytest.fixture
def given_up(webhook_secret: None) -> StripeEvent:
    """A success for an intent no invoice had, stored and given up after three days."""
    assert stripe_sends(events.intent_succeeded("pi_arrived_early", 30000)).startswith("waiting")
    events_retry(now=timezone.now() + timedelta(days=4))
    event = StripeEvent.objects.get()
    assert event.outcome.startswith("gave up: waiting")
    assert event.processed_at is not None
    return event


def test_an_admin_sees_a_given_up_event_under_given_up_and_not_waiting(
    given_up: StripeEvent, browsers: dict[str, Client]
) -> None:
    listed = {
        state: [
            e.pk
            for e in browsers["admin"]
            .get(f"/admin/billing/stripeevent/?state={state}")
            .context["cl"]
            .result_list
        ]
        for state in ("waiting", "processed", "rejected", "given_up")
    }
    assert listed == {"waiting": [], "processed": [], "rejected": [], "given_up": [given_up.pk]}


def test_an_admin_retries_a_given_up_event_and_it_settles(
    given_up: StripeEvent,
    project_a: Project,
    admin: User,
    browsers: dict[str, Client],
    fake_stripe: FakeStripe,
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    Invoice.objects.filter(pk=invoice.pk).update(provider_reference="pi_arrived_early")

    response = retry(browsers["admin"], "/admin/billing/stripeevent/", given_up)

    assert messages_of(response) == ["1 event(s) retried: 1 processed, 0 still cannot be settled."]
    given_up.refresh_from_db()
    assert given_up.outcome == "settled"
    assert given_up.attempts == 2
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert Payment.objects.get().provider_reference == "pi_arrived_early"


def test_a_given_up_event_that_still_cannot_settle_stays_given_up(
    given_up: StripeEvent, browsers: dict[str, Client]
) -> None:
    response = retry(browsers["admin"], "/admin/billing/stripeevent/", given_up)

    assert messages_of(response) == ["1 event(s) retried: 0 processed, 1 still cannot be settled."]
    given_up.refresh_from_db()
    assert given_up.outcome.startswith("gave up: waiting")
    assert given_up.processed_at is not None
    assert given_up.attempts == 2
    # The worker's next pass does not pick it up again.
    assert events_retry().processed == 0
    assert StripeEvent.objects.get().attempts == 2


def test_a_retry_leaves_processed_events_alone(paid: Invoice, browsers: dict[str, Client]) -> None:
    settled = StripeEvent.objects.get()

    with unchanged():
        response = retry(browsers["admin"], "/admin/billing/stripeevent/", settled)

    assert messages_of(response) == [
        "0 event(s) retried: 0 processed, 0 still cannot be settled. "
        "1 already processed were left as they are."
    ]


def test_staff_cannot_retry_a_stripe_event(
    given_up: StripeEvent, browsers: dict[str, Client]
) -> None:
    with unchanged():
        response = browsers["staff"].post(
            "/admin/billing/stripeevent/",
            {"action": "retry", "index": 0, "_selected_action": [given_up.pk]},
        )
    assert response.status_code == 403


# --- the Content-Security-Policy ----------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/admin/billing/stripeevent/{event}/change/"])
def test_admin_pages_need_no_inline_script_or_style(
    path: str, browsers: dict[str, Client], given_up: StripeEvent
) -> None:
    response = browsers["admin"].get(path.format(event=given_up.pk))
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    page = response.content.decode()
    assert "<style" not in page
    assert " style=" not in page
    assert not [tag for tag in page.split("<script")[1:] if "src=" not in tag.split(">")[0]]


def test_an_admin_sees_events_and_emails_without_client_secrets_or_pay_links(
    browsers: dict[str, Client], paid: Invoice
) -> None:
    """A pay link and a client secret are the customer's credentials, not the operator's."""
    event = StripeEvent.objects.get(event_type="payment_intent.succeeded")
    secret = event.payload["data"]["object"]["client_secret"]
    email = OutboxEmail.objects.filter(kind="invoice_sent").get()
    assert paid.pay_token
    assert paid.pay_token in email.body_text  # what there was to hide

    shown_event = browsers["admin"].get(f"/admin/billing/stripeevent/{event.pk}/change/")
    shown_email = browsers["admin"].get(f"/admin/notifications/outboxemail/{email.pk}/change/")

    assert (shown_event.status_code, shown_email.status_code) == (200, 200)
    event_page, email_page = shown_event.content.decode(), shown_email.content.decode()
    assert secret not in event_page
    assert "&quot;client_secret&quot;: &quot;[redacted]&quot;" in event_page
    assert paid.pay_token not in email_page
    assert "/pay/[redacted]" in email_page
