"""One way to sign in: the form and the token endpoint match the email the same way and
count, lock and clear failures the same way; the address counted is the real client's."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory

from tests.factories import PASSWORD
from tests.helpers import Api, unchanged
from tranche.accounts.models import ApiToken, User
from tranche.core.http import client_ip

pytestmark = pytest.mark.django_db


def form_login(browser: Client, email: str, password: str, **headers: str) -> int:
    response = browser.post(
        "/login/", {"username": email, "password": password}, headers=headers or None
    )
    return response.status_code


def api_login(email: str, password: str, **headers: str) -> int:
    api = Api(None)
    api.headers.update(headers)
    return api.post("/api/auth/token", {"email": email, "password": password}).status


def test_staff_member_signs_in_on_the_form_whatever_the_case_of_the_email(staff: User) -> None:
    browser = Client()

    assert form_login(browser, "Staff@Tranche.EXAMPLE", PASSWORD) == 302
    assert browser.get("/api/customers").status_code == 200


def test_an_api_login_clears_the_failures_counted_by_the_form(staff: User) -> None:
    browser = Client()
    for _ in range(4):
        assert form_login(browser, staff.email, "guess") == 200

    assert api_login(staff.email, PASSWORD) == 201

    # Four fresh mistakes are not a lockout: the successful login started the count over.
    for _ in range(4):
        assert form_login(browser, staff.email, "guess") == 200
    assert form_login(browser, staff.email, PASSWORD) == 302


def test_an_api_login_clears_its_own_failures(staff: User) -> None:
    for _ in range(4):
        assert api_login(staff.email, "guess") == 401
    assert api_login(staff.email, PASSWORD) == 201

    for _ in range(4):
        assert api_login(staff.email, "guess") == 401
    assert api_login(staff.email, PASSWORD) == 201
    assert ApiToken.objects.filter(user=staff).count() == 2


def test_failures_on_the_form_and_the_api_add_up_to_one_lockout(staff: User) -> None:
    browser = Client()
    for _ in range(2):
        assert form_login(browser, "STAFF@tranche.example", "guess") == 200
    for _ in range(2):
        assert api_login("staff@TRANCHE.example", "guess") == 401
    assert form_login(browser, staff.email, "guess") == 429

    with unchanged():
        assert api_login(staff.email, PASSWORD) == 429
    assert form_login(browser, staff.email, PASSWORD) == 429


# --- the client's address behind a proxy --------------------------------------------------

PROXY = "10.0.0.2"


def through_proxy(client_address: str) -> dict[str, str]:
    return {"X-Forwarded-For": client_address}


def test_behind_a_trusted_proxy_a_guesser_locks_only_their_own_address(
    staff: User, settings: Any
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = Client(REMOTE_ADDR=PROXY)
    for _ in range(5):
        form_login(attacker, staff.email, "guess", **through_proxy("203.0.113.9"))
    assert form_login(attacker, staff.email, PASSWORD, **through_proxy("203.0.113.9")) == 429

    owner = Client(REMOTE_ADDR=PROXY)
    assert form_login(owner, staff.email, PASSWORD, **through_proxy("198.51.100.7")) == 302
    token = Api(None)
    token.client = Client(REMOTE_ADDR=PROXY)
    token.headers = through_proxy("198.51.100.7")
    response = token.post("/api/auth/token", {"email": staff.email, "password": PASSWORD})
    assert response.status == 201


def test_without_a_trusted_proxy_a_forged_forwarded_header_does_not_dodge_the_lockout(
    staff: User,
) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(5):
        form_login(attacker, staff.email, "guess", **through_proxy(f"198.51.100.{n}"))

    assert form_login(attacker, staff.email, PASSWORD, **through_proxy("198.51.100.99")) == 429


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        (0, "10.0.0.2", "203.0.113.9", "10.0.0.2"),
        (1, "10.0.0.2", "203.0.113.9", "203.0.113.9"),
        # The client wrote the left-most entry itself; the proxy appended the real one.
        (1, "10.0.0.2", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        (2, "10.0.0.3", "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        # Fewer entries than trusted proxies: the request bypassed them, trust the peer.
        (2, "203.0.113.9", "6.6.6.6", "203.0.113.9"),
        (1, "10.0.0.2", "", "10.0.0.2"),
    ],
)
def test_the_client_address_is_the_one_the_outermost_trusted_proxy_saw(
    settings: Any, trusted: int, remote: str, forwarded: str, expected: str
) -> None:
    settings.TRUSTED_PROXY_COUNT = trusted
    request = RequestFactory().get("/login/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == expected
