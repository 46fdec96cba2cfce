"""Rate limits on every endpoint a visitor may call without signing in: after N attempts
from one address (or for one target) the next is refused with 429 and Retry-After, JSON
under /api/ and a friendly page elsewhere; another address is still served; and the
refused attempt changed nothing."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, UserFactory
from tests.figures import record
from tests.helpers import unchanged
from tranche.accounts.links import Purpose, set_password_url
from tranche.accounts.models import ApiToken, Role, User
from tranche.billing.models import Invoice, InvoiceStatus, Payment
from tranche.billing.services.sending import invoice_send
from tranche.core import ratelimit
from tranche.core.ratelimit import RULES, UNLIMITED, attempt
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

N = 3
WINDOW_START = 1_800_000_000.0  # a multiple of 600: the start of a ten-minute window
HERE = "198.51.100.7"
THERE = "203.0.113.9"


@pytest.fixture(autouse=True)
def small_limits(settings: Any) -> None:
    """N attempts per ten minutes for every limit, so each test reaches it quickly."""
    settings.RATE_LIMITS = {name: (N, 600) for name in settings.RATE_LIMITS}


@pytest.fixture(autouse=True)
def one_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of a test counts in one window: the windows are fixed spans of the
    clock, and a slow test (a PDF laid out on a busy machine) that ran across a boundary
    would start counting again and never see its 429."""
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: WINDOW_START + 1))


def client(address: str = HERE) -> Client:
    return Client(REMOTE_ADDR=address)


@contextmanager
def nothing_changes() -> Iterator[None]:
    """No Tranche row, no failed-login count, no session changes."""
    attempts = list(AccessAttempt.objects.order_by("pk").values())
    sessions = Session.objects.count()
    with unchanged():
        yield
    assert list(AccessAttempt.objects.order_by("pk").values()) == attempts
    assert Session.objects.count() == sessions


def assert_refused_page(response: Any) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 600
    page = response.content.decode()
    assert "Too many attempts" in page
    assert "Try again in" in page
    assert response["Content-Type"].startswith("text/html")


def assert_refused_json(response: Any) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 600
    body = json.loads(response.content)
    assert body["code"] == "rate_limited"
    assert body["detail"].startswith("Too many attempts from your address. Try again in ")
    assert set(body) == {"detail", "code"}


def form_login(browser: Client, email: str, password: str) -> Any:
    return browser.post("/login/", {"username": email, "password": password})


def api_login(browser: Client, email: str, password: str) -> Any:
    return browser.post(
        "/api/auth/token",
        json.dumps({"email": email, "password": password}),
        content_type="application/json",
    )


# --- signing in -----------------------------------------------------------------------


def test_the_sign_in_page_refuses_an_address_after_n_attempts(staff: User) -> None:
    guesser = client(HERE)
    for i in range(N):
        # Different accounts, so the per-account limit and the lockout stay out of it.
        assert form_login(guesser, f"nobody{i}@example.com", "guess").status_code == 200

    with nothing_changes():
        refused = form_login(guesser, staff.email, PASSWORD)
    assert_refused_page(refused)
    assert guesser.get("/api/customers").status_code == 401  # the right password did not sign in

    elsewhere = client(THERE)
    assert form_login(elsewhere, staff.email, PASSWORD).status_code == 302
    assert elsewhere.get("/api/customers").status_code == 200


def test_the_token_endpoint_refuses_an_address_after_n_attempts(staff: User) -> None:
    guesser = client(HERE)
    for i in range(N):
        assert api_login(guesser, f"nobody{i}@example.com", "guess").status_code == 401

    with nothing_changes():
        refused = api_login(guesser, staff.email, PASSWORD)
    assert_refused_json(refused)
    assert not ApiToken.objects.exists()

    assert api_login(client(THERE), staff.email, PASSWORD).status_code == 201
    assert ApiToken.objects.filter(user=staff).count() == 1


def test_one_account_is_limited_across_addresses(staff: User, admin: User) -> None:
    # Guesses at one account spread over many addresses, however the email is cased.
    for i, email in enumerate(["Staff@tranche.example", "STAFF@TRANCHE.EXAMPLE", staff.email]):
        assert form_login(client(f"192.0.2.{i + 1}"), email, "guess").status_code == 200

    with nothing_changes():
        assert_refused_json(api_login(client("192.0.2.50"), staff.email, PASSWORD))
    # Another account from the same address is served.
    assert api_login(client("192.0.2.50"), admin.email, PASSWORD).status_code == 201


def test_the_sign_in_page_and_the_token_endpoint_share_one_count(staff: User) -> None:
    guesser = client(HERE)
    assert form_login(guesser, "a@example.com", "guess").status_code == 200
    assert api_login(guesser, "b@example.com", "guess").status_code == 401
    assert form_login(guesser, "c@example.com", "guess").status_code == 200
    with nothing_changes():
        assert_refused_json(api_login(guesser, staff.email, PASSWORD))


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(settings: Any, staff: User) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = client("10.0.0.2")
    for i in range(N):
        response = proxy.post(
            "/login/",
            {"username": f"n{i}@example.com", "password": "x"},
            headers={"X-Forwarded-For": HERE},
        )
        assert response.status_code == 200
    refused = proxy.post(
        "/login/",
        {"username": staff.email, "password": PASSWORD},
        headers={"X-Forwarded-For": HERE},
    )
    assert_refused_page(refused)
    # The same proxy forwarding another client is that client's own count.
    served = proxy.post(
        "/login/",
        {"username": staff.email, "password": PASSWORD},
        headers={"X-Forwarded-For": THERE},
    )
    assert served.status_code == 302


def test_without_a_trusted_proxy_a_forged_forwarded_header_changes_nothing(
    staff: User,
) -> None:
    guesser = client(HERE)
    for i in range(N):
        response = guesser.post(
            "/login/",
            {"username": f"n{i}@example.com", "password": "x"},
            headers={"X-Forwarded-For": f"192.0.2.{i}"},
        )
        assert response.status_code == 200
    refused = guesser.post(
        "/login/",
        {"username": staff.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.99"},
    )
    assert_refused_page(refused)


# --- password reset: the request and the link ----------------------------------------


def test_reset_requests_are_limited_per_address() -> None:
    people = [UserFactory.create(email=f"p{i}@example.com", role=Role.STAFF) for i in range(N + 1)]
    asker = client(HERE)
    for person in people[:N]:
        response = asker.post("/account/forgot-password/", {"email": person.email})
        assert response.status_code == 302
    assert OutboxEmail.objects.filter(kind="password_reset").count() == N

    with nothing_changes():
        assert_refused_page(asker.post("/account/forgot-password/", {"email": people[N].email}))

    assert client(THERE).post(
        "/account/forgot-password/", {"email": people[N].email}
    ).status_code == (302)
    assert OutboxEmail.objects.filter(kind="password_reset", to=people[N].email).count() == 1


def test_reset_requests_for_one_address_are_limited_across_addresses(alice: User) -> None:
    for i, email in enumerate(["alice@acme.example", "Alice@Acme.example", "ALICE@ACME.EXAMPLE"]):
        response = client(f"192.0.2.{i + 1}").post("/account/forgot-password/", {"email": email})
        assert response.status_code == 302
    with nothing_changes():
        assert_refused_page(
            client("192.0.2.50").post("/account/forgot-password/", {"email": alice.email})
        )


def _link_path(person: User, purpose: Purpose = Purpose.INVITATION) -> str:
    url = set_password_url(person, purpose=purpose, now=timezone.now())
    return url.split("testserver", 1)[1]


def test_accepting_invitations_is_limited_per_address() -> None:
    invitees = [
        UserFactory.create(email=f"new{i}@example.com", role=Role.STAFF) for i in range(N + 1)
    ]
    visitor = client(HERE)
    for person in invitees[:N]:
        # Passwords that do not match: the form answers 422 and nothing is set.
        response = visitor.post(
            _link_path(person), {"password1": "one long pass 1", "password2": "other 2"}
        )
        assert response.status_code == 422

    last = invitees[N]
    with nothing_changes():
        refused = visitor.post(
            _link_path(last), {"password1": "a good new pass 9", "password2": "a good new pass 9"}
        )
    assert_refused_page(refused)
    last.refresh_from_db()
    assert not last.check_password("a good new pass 9")

    accepted = client(THERE).post(
        _link_path(last), {"password1": "a good new pass 9", "password2": "a good new pass 9"}
    )
    assert accepted.status_code == 302
    last.refresh_from_db()
    assert last.check_password("a good new pass 9")


def test_one_persons_link_is_limited_across_addresses(alice: User) -> None:
    link = _link_path(alice, Purpose.PASSWORD_RESET)
    uid = link.split("/")[3]
    # The same person's id written with base64 padding is the same count.
    padded = [link, link.replace(f"/{uid}/", f"/{uid}=/"), link.replace(f"/{uid}/", f"/{uid}==/")]
    for i, path in enumerate(padded[:N]):
        response = client(f"192.0.2.{i + 1}").post(path, {"password1": "x", "password2": "y"})
        assert response.status_code in (410, 422)
    with nothing_changes():
        refused = client("192.0.2.50").post(
            link, {"password1": "a good new pass 9", "password2": "a good new pass 9"}
        )
    assert_refused_page(refused)
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


# --- the pay link -----------------------------------------------------------------------


@pytest.fixture
def sent(project_a: Project, admin: User) -> Invoice:
    return invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)


DECLINED = "4000 0000 0000 0002"
TEST_CARD = "4242 4242 4242 4242"


def test_pay_posts_are_limited_per_link(sent: Invoice) -> None:
    path = f"/pay/{sent.pay_token}"
    for i in range(N):
        response = client(f"192.0.2.{i + 1}").post(path, {"card_number": DECLINED})
        assert response.status_code == 302
    with nothing_changes():
        assert_refused_page(client("192.0.2.50").post(path, {"card_number": TEST_CARD}))
    sent.refresh_from_db()
    assert sent.status == InvoiceStatus.PENDING
    assert not Payment.objects.exists()


def test_pay_posts_are_limited_per_address(project_a: Project, admin: User) -> None:
    invoices = [
        invoice_send(actor=admin, invoice_id=draft_for(project_a, i, admin).pk) for i in (1, 2)
    ]
    payer = client(HERE)
    for i in range(N):
        invoice = invoices[i % 2]
        assert payer.post(f"/pay/{invoice.pay_token}", {"card_number": DECLINED}).status_code == (
            302
        )
    # An unknown link counts too: guessing links is what this stops.
    with nothing_changes():
        assert_refused_page(payer.post("/pay/not-a-real-link", {"card_number": TEST_CARD}))
        assert_refused_page(payer.post(f"/pay/{invoices[0].pay_token}", {"card_number": TEST_CARD}))
    assert not Payment.objects.exists()

    # Another payer on the second invoice's link, which has had one attempt only.
    paid = client(THERE).post(f"/pay/{invoices[1].pay_token}", {"card_number": TEST_CARD})
    assert paid.status_code == 302
    assert Payment.objects.filter(invoice=invoices[1]).count() == 1


@pytest.mark.parametrize("suffix", ["", "/invoice.pdf", "/receipt.pdf", "/done"])
def test_pages_behind_the_pay_link_are_limited_per_address(sent: Invoice, suffix: str) -> None:
    path = f"/pay/{sent.pay_token}{suffix}"
    reader = client(HERE)
    for _ in range(N):
        assert reader.get(path).status_code != 429
    with nothing_changes():
        assert_refused_page(reader.get(path))
        assert_refused_page(reader.get("/pay/guessed-link"))
    assert client(THERE).get(path).status_code != 429


# --- the counting itself ----------------------------------------------------------------


def test_a_window_ends_and_the_count_starts_over() -> None:
    start = 1_800_000_000.0  # the start of a ten-minute window
    for _ in range(N):
        assert attempt("sign_in_address", HERE, now=start + 1) is None
    assert attempt("sign_in_address", HERE, now=start + 1) == pytest.approx(599)
    assert attempt("sign_in_address", HERE, now=start + 599) == pytest.approx(1)
    assert attempt("sign_in_address", HERE, now=start + 600) is None


def test_a_limit_switched_off_counts_nothing(settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "sign_in_address": None}
    for _ in range(N * 3):
        assert attempt("sign_in_address", HERE) is None


def test_the_counters_live_in_the_database_cache_shared_by_every_worker(settings: Any) -> None:
    backend = settings.CACHES[settings.RATE_LIMIT_CACHE]["BACKEND"]
    assert backend == "django.core.cache.backends.db.DatabaseCache"
    assert attempt("pay_address", HERE) is None
    table = settings.CACHES[settings.RATE_LIMIT_CACHE]["LOCATION"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        assert cursor.fetchone()[0] >= 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_attempts_never_pass_more_than_the_limit(settings: Any) -> None:
    """Twelve requests at once, each on its own database connection: exactly N pass."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "sign_in_account": (N, 600)}
    caches["default"].clear()
    barrier = threading.Barrier(12)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        from django.db import connections

        try:
            barrier.wait()
            passed = attempt("sign_in_account", "target@example.com") is None
            with lock:
                outcomes.append(passed)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 12
    assert outcomes.count(True) == N


# --- documented -------------------------------------------------------------------------


def test_the_token_endpoint_documents_its_429() -> None:
    schema = json.loads(Client().get("/api/openapi.json").content)
    responses = schema["paths"]["/api/auth/token"]["post"]["responses"]
    assert {"201", "401", "422", "429"} <= set(responses)


# --- every anonymous endpoint, found in the URL configuration ----------------------------

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAMPLES = {"int": "1", "str": "x", "path": "x", "slug": "x", "uuid": str(uuid.UUID(int=1))}


def _routes(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(sample path, view name) for every route, with each parameter filled in."""
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            text = re.sub(
                r"<(?:(\w+):)?(\w+)>",
                lambda m: SAMPLES[m.group(1) or "str"],
                str(pattern),
            )
        else:
            text = str(pattern).lstrip("^").rstrip("$")
            if re.search(r"[(\[\\]", text):
                # The admin's app index (`(?P<app_label>…)/`): behind admin_view like the
                # rest of the operations site, which this walk covers.
                assert prefix == "admin/", str(pattern)
                continue
            text = text or ""
        if isinstance(entry, URLResolver):
            yield from _routes(entry, prefix + text)
        else:
            path = "/" + prefix + text
            yield path, resolve(path).view_name


def _asks_to_sign_in(response: Any) -> bool:
    """401 from the API, a redirect to the sign-in page, or a method not served."""
    if response.status_code in (401, 405):
        return True
    location: str = response.get("Location", "")
    return response.status_code == 302 and location.startswith(f"{settings.LOGIN_URL}?next=")


def anonymous_endpoints() -> set[tuple[str, str]]:
    found = set()
    visitor = Client(REMOTE_ADDR="192.0.2.200")
    for path, view_name in _routes(get_resolver()):
        for method in METHODS:
            response = visitor.generic(method, path, data="", content_type="application/json")
            if not _asks_to_sign_in(response):
                found.add((view_name, method))
    return found


def test_every_anonymous_endpoint_is_limited_or_says_why_not(settings: Any) -> None:
    """Generated from the URL configuration: every (view, method) a visitor reaches is in
    RULES or in UNLIMITED with its reason, and neither lists anything a visitor cannot
    reach, so a new anonymous endpoint fails here until it is given a limit or a reason."""
    settings.RATE_LIMITS = {name: None for name in settings.RATE_LIMITS}
    reached = anonymous_endpoints()
    unlimited = {
        (view, method)
        for view, method in reached
        if (view, method) in UNLIMITED or (view, "*") in UNLIMITED
    }
    limited = reached & set(RULES)
    assert reached - limited - unlimited == set(), "anonymous endpoints with no limit or reason"
    assert set(RULES) - reached == set(), "rules for endpoints a visitor cannot reach"
    stale = {
        key
        for key in UNLIMITED
        if key not in reached and not any(view == key[0] for view, _ in reached)
    }
    assert stale == set(), "reasons for endpoints a visitor cannot reach"
    record(
        "limits",
        anonymous_endpoints=len(reached),
        anonymous_endpoints_limited=len(limited),
        endpoints=sorted(f"{method} {view}" for view, method in limited),
        unlimited={
            f"{method} {view}": UNLIMITED.get((view, method)) or UNLIMITED[(view, "*")]
            for view, method in sorted(unlimited)
        },
        limits_per_endpoint={
            f"{method} {view}": [limit.name for limit in RULES[(view, method)]]
            for view, method in sorted(limited)
        },
    )
