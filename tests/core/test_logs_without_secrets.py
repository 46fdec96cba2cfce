"""No credential reaches a log line. A whole flow runs with every logger's records
captured at DEBUG (the root logger at DEBUG, as LOG_LEVEL=DEBUG sets it, and SQL logging
switched on as DEBUG=1 would), written by both formatters through the handlers settings
configure; then every secret the flow used is searched for in every line.

The flow: sign in with a password (and once with a wrong one), make an API token and use
it, quote → accept → complete → send with Stripe (the fake gives a client secret), the
pay page and Stripe's return to it, a signed webhook settles it, the emails leave over
SMTP, a password reset link (refused once: a 422 on that page is logged with its path),
two-factor enrolment."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
from base64 import b32decode
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from tests.billing import stripe_events
from tests.factories import PASSWORD, totp_code
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.stripe_server import API_KEY as STRIPE_KEY
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import AfterCommit
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.core.logging import logging_config
from tranche.notifications.models import OutboxEmail

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Otter-Lantern-Quarry-8842"
WRONG_PASSWORD = "Guess-Not-This-One-5531"


@pytest.fixture
def every_line() -> Iterator[Callable[[], list[str]]]:
    """Django's logging as settings configure it, at DEBUG, with the console handler
    twice: once plain, once JSON. Returns a function giving every line written so far."""
    plain, structured = io.StringIO(), io.StringIO()
    config = logging_config(fmt="plain", level="DEBUG")
    console = config["handlers"]["console"]
    config["handlers"] = {
        "console": {**console, "stream": plain},
        "json": {**console, "formatter": "json", "stream": structured},
    }
    config["root"]["handlers"] = ["console", "json"]
    config["loggers"]["django.server"]["handlers"] = ["console", "json"]
    # The test's own SMTP server (aiosmtpd) logs each line it receives at DEBUG: it stands
    # for the mail provider, whose logs are not Tranche's.
    config["loggers"]["mail.log"] = {"level": "WARNING"}
    logging.config.dictConfig(config)
    # What DEBUG=1 does for every query: django.db.backends would log its parameters.
    connection.force_debug_cursor = True
    try:
        yield lambda: plain.getvalue().splitlines() + structured.getvalue().splitlines()
    finally:
        connection.force_debug_cursor = False
        logging.config.dictConfig(django_settings.LOGGING)


def _csrf(client: Client) -> str:
    return client.cookies["csrftoken"].value


def test_a_whole_flow_logs_no_secret(
    every_line: Callable[[], list[str]],
    admin: User,
    customer_a: Customer,
    fake_stripe: FakeStripe,
    smtp: SmtpServer,
    settings: Any,
    after_commit: AfterCommit,
) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [stripe_events.WEBHOOK_SECRET]
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_tranche_logs"
    secrets: dict[str, str] = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "new password": NEW_PASSWORD,
        "webhook secret": stripe_events.WEBHOOK_SECRET,
        "Stripe secret key": STRIPE_KEY,
        "SECRET_KEY": django_settings.SECRET_KEY,
    }

    # Sign in with a password: once wrong, then right. CSRF is checked, as in a browser.
    browser = Client(enforce_csrf_checks=True)
    browser.get("/login/")
    refused = browser.post(
        "/login/",
        {
            "username": admin.email,
            "password": WRONG_PASSWORD,
            "csrfmiddlewaretoken": _csrf(browser),
        },
    )
    assert refused.status_code == 200
    signed_in = browser.post(
        "/login/",
        {"username": admin.email, "password": PASSWORD, "csrfmiddlewaretoken": _csrf(browser)},
    )
    assert signed_in.status_code == 302
    secrets["session key"] = browser.cookies["sessionid"].value
    secrets["CSRF token"] = _csrf(browser)

    # An API token, made with the password and used.
    api = Client()
    made = api.post(
        "/api/auth/token",
        {"email": admin.email, "password": PASSWORD},
        content_type="application/json",
    )
    assert made.status_code == 201
    token = made.json()["token"]
    secrets["API token"] = token
    bearer = {"Authorization": f"Bearer {token}"}

    def call(method: str, path: str, body: Any = None) -> Any:
        response = api.generic(
            method,
            path,
            json.dumps(body) if body is not None else "",
            content_type="application/json",
            headers=bearer,
        )
        assert response.status_code < 300, (path, response.content)
        return response.json()

    assert call("GET", "/api/invoices")["items"] == []

    # Quote → accept → complete → send, through Stripe (the fake).
    quote = call(
        "POST",
        "/api/quotes",
        {
            "customer_id": customer_a.pk,
            "title": "Roof repair",
            "currency": "USD",
            "lines": [{"description": "Roofing", "quantity": "1", "unit_price": "1000.00"}],
            "schedule": [{"title": "All", "is_billable": True, "billing_percentage": "100"}],
        },
    )
    project = call("POST", f"/api/quotes/{quote['id']}/accept")["project"]
    milestone = project["milestones"][0]
    draft = call("PATCH", f"/api/projects/{project['id']}/milestones/{milestone['id']}/complete")[
        "draft_invoice"
    ]
    with after_commit(execute=True):
        call("POST", f"/api/projects/{project['id']}/invoices/{draft['id']}/send")
    invoice = Invoice.objects.get()
    pay_token = invoice.pay_token
    assert pay_token
    intent = fake_stripe.intents[invoice.provider_reference or ""]
    secrets["pay token"] = pay_token
    secrets["client secret"] = intent["client_secret"]

    # The customer opens the pay page (the client secret is in it, for Stripe.js), Stripe
    # sends her back with the secret in the query, and someone mistypes the link.
    customer = Client()
    page = customer.get(f"/pay/{pay_token}")
    assert intent["client_secret"] in page.content.decode()
    customer.get(
        f"/pay/{pay_token}/done?payment_intent={intent['id']}"
        f"&payment_intent_client_secret={intent['client_secret']}"
    )
    assert customer.get(f"/pay/{pay_token}x").status_code == 404

    # Stripe's signed webhook settles the invoice; the receipt leaves by SMTP.
    intent.update(status="succeeded", amount_received=intent["amount"])
    payload = stripe_events.intent_succeeded(intent["id"], intent["amount"])
    with after_commit(execute=True):
        settled = Client().post(
            "/api/webhooks/stripe",
            payload,
            content_type="application/json",
            headers={"Stripe-Signature": stripe_events.sign(payload)},
        )
    assert settled.status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert len(smtp.messages) >= 2  # the invoice and its receipt, at least

    # A password reset: the link is asked for, refused once (passwords differ), then used.
    guest = Client()
    with after_commit(execute=True):
        guest.post("/account/forgot-password/", {"email": admin.email})
    reset = OutboxEmail.objects.get(kind="password_reset")
    link = re.search(r"https?://\S+?(/account/set-password/(\S+?)/(\S+?)/)", reset.body_text)
    assert link is not None
    path, secrets["reset-link token"] = link.group(1), link.group(3)
    assert guest.get(path).status_code == 200
    assert guest.post(path, {"password1": NEW_PASSWORD, "password2": "nope"}).status_code == 422
    done = guest.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    secrets["session key after the reset"] = guest.cookies["sessionid"].value

    # Two-factor enrolment: the secret is shown once, and a code from it turns it on.
    enrol = guest.get("/account/two-factor/enrol/").content.decode()
    shown = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', enrol)
    assert shown is not None
    key = b32decode(shown.group(1).replace(" ", ""))
    secrets["TOTP secret"] = shown.group(1).replace(" ", "")
    secrets["TOTP key"] = key.hex()
    turned_on = guest.post("/account/two-factor/enrol/", {"code": totp_code(key)})
    assert turned_on.status_code == 200
    recovery = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", turned_on.content.decode())
    assert len(recovery) == 10
    secrets.update({f"recovery code {n}": code for n, code in enumerate(recovery, 1)})

    lines = every_line()
    leaks = {
        name: [line for line in lines if value in line]
        for name, value in secrets.items()
        if any(value in line for line in lines)
    }
    assert leaks == {}

    # The capture saw the flow, in both formats: Tranche's own lines, the SDK's, Django's
    # request warnings (with their paths); and not one line of SQL, though it was on.
    records = [json.loads(line) for line in lines if line.startswith("{")]
    loggers = {record["logger"] for record in records}
    assert {"tranche.notifications.delivery", "stripe", "django.request"} <= loggers
    assert "django.db.backends" not in loggers
    assert not any("django.db.backends" in line for line in lines)
    assert any("/account/set-password/" in line for line in lines)
    assert any("Not Found: /pay/[redacted]" in line for line in lines)
    # Django logs a refused request after the middleware: it still carries its request id.
    assert all(r["request_id"] != "-" for r in records if r["logger"] == "django.request")
