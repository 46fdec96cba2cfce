"""How long a session lasts (idle SESSION_IDLE_MINUTES, at most 12 hours) and the
sessions that end with a changed password or a deactivated account.

The clock: the session keeps when it was signed in and last seen; a test moves those
stamps into the past, the app reads the real `timezone.now()`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD
from tests.figures import record
from tests.helpers import Api
from tranche.accounts.links import Purpose, set_password_url
from tranche.accounts.models import User
from tranche.accounts.services import token_create
from tranche.accounts.sessions import SEEN_AT, SIGNED_IN_AT, session_expiry

pytestmark = pytest.mark.django_db

CASES: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    record("auth", session_timeouts_tested=len(CASES), session_cases=sorted(CASES))


def signed_in(user: User) -> Client:
    client = Client()
    response = client.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def age(client: Client, *, signed_in_ago: timedelta, seen_ago: timedelta) -> None:
    now = timezone.now()
    session = client.session
    session[SIGNED_IN_AT] = (now - signed_in_ago).timestamp()
    session[SEEN_AT] = (now - seen_ago).timestamp()
    session.save()


def test_the_limits_as_a_rule() -> None:
    start = timezone.now()
    minute = timedelta(minutes=1)

    def at(signed_in_ago: timedelta, seen_ago: timedelta) -> str | None:
        return session_expiry(
            signed_in_at=start - signed_in_ago, seen_at=start - seen_ago, now=start
        )

    assert at(minute, minute) is None
    assert at(30 * minute, 30 * minute) is None  # the 30th minute still counts
    assert at(31 * minute, 30 * minute + timedelta(seconds=1)) == "idle"
    assert at(timedelta(hours=12), minute) is None
    assert at(timedelta(hours=12, seconds=1), minute) == "absolute"
    assert at(timedelta(hours=13), timedelta(hours=1)) == "absolute"


def test_a_session_left_alone_for_longer_than_the_idle_limit_ends(staff: User) -> None:
    CASES.add("idle_page")
    client = signed_in(staff)
    age(client, signed_in_ago=timedelta(hours=1), seen_ago=timedelta(minutes=31))
    key = client.session.session_key

    response = client.get("/projects/?q=kitchen")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/projects/%3Fq%3Dkitchen"
    assert client.session.get(SESSION_KEY) is None
    assert not Session.objects.filter(session_key=key).exists()
    page = client.get(response["Location"])
    assert "signed out after 30 minutes without activity" in page.content.decode()


def test_the_api_says_the_session_expired(staff: User) -> None:
    CASES.add("idle_api")
    client = signed_in(staff)
    age(client, signed_in_ago=timedelta(hours=1), seen_ago=timedelta(minutes=31))

    response = client.get("/api/customers")

    assert response.status_code == 401
    assert response.json()["code"] == "session_expired"


def test_activity_keeps_a_session_going(staff: User) -> None:
    CASES.add("activity_extends")
    client = signed_in(staff)
    age(client, signed_in_ago=timedelta(hours=2), seen_ago=timedelta(minutes=29))

    assert client.get("/projects/").status_code == 200

    seen = client.session[SEEN_AT]
    assert timezone.now().timestamp() - seen < 5
    # Signing in again moves nothing but "last seen": 29 more minutes are fine again.
    age(client, signed_in_ago=timedelta(hours=2, minutes=29), seen_ago=timedelta(minutes=29))
    assert client.get("/projects/").status_code == 200


def test_the_idle_limit_is_configurable(staff: User, settings: Any) -> None:
    CASES.add("idle_configurable")
    settings.SESSION_IDLE_MINUTES = 5
    client = signed_in(staff)
    age(client, signed_in_ago=timedelta(minutes=10), seen_ago=timedelta(minutes=6))

    assert client.get("/projects/").status_code == 302
    assert client.session.get(SESSION_KEY) is None


def test_no_session_lasts_longer_than_twelve_hours_however_busy(staff: User) -> None:
    CASES.add("absolute")
    client = signed_in(staff)
    age(client, signed_in_ago=timedelta(hours=12, seconds=5), seen_ago=timedelta(seconds=5))

    response = client.get("/")

    assert response.status_code == 302
    assert client.session.get(SESSION_KEY) is None
    assert "at most 12 hours" in client.get("/login/").content.decode()


def test_signing_in_again_starts_the_twelve_hours_again(staff: User) -> None:
    CASES.add("fresh_sign_in_restarts")
    client = signed_in(staff)
    age(client, signed_in_ago=timedelta(hours=11, minutes=59), seen_ago=timedelta(minutes=1))

    client.post("/login/", {"username": staff.email, "password": PASSWORD})

    assert timezone.now().timestamp() - client.session[SIGNED_IN_AT] < 5


def test_a_changed_password_ends_every_other_session(staff: User) -> None:
    CASES.add("password_change_ends_others")
    laptop, phone = signed_in(staff), signed_in(staff)
    phone_key = phone.session.session_key

    changed = laptop.post(
        "/account/password",
        {
            "current": PASSWORD,
            "password1": "a brand new passphrase",
            "password2": "a brand new passphrase",
        },
    )

    assert changed.status_code == 302
    assert not Session.objects.filter(session_key=phone_key).exists()
    assert phone.get("/projects/").status_code == 302
    assert phone.get("/api/customers").status_code == 401
    # The laptop that changed it stays signed in.
    assert laptop.get("/projects/").status_code == 200


def test_the_session_hash_alone_ends_a_session_whose_row_survived(staff: User) -> None:
    """Django's own guard, verified: a session made before the password changed no longer
    matches the user's password hash, even if its row was not deleted."""
    CASES.add("session_hash")
    phone = signed_in(staff)
    staff.set_password("changed elsewhere entirely")
    staff.save(update_fields=["password"])

    assert phone.get("/api/customers").status_code == 401
    assert phone.get("/projects/").status_code == 302


def test_a_password_reset_by_link_ends_every_session(alice: User) -> None:
    CASES.add("reset_link_ends_all")
    old = signed_in(alice)
    old_key = old.session.session_key
    alice.refresh_from_db()  # the link signs the last sign-in time too
    link = set_password_url(alice, purpose=Purpose.PASSWORD_RESET, now=timezone.now())
    path = "/" + link.split("/", 3)[3]

    Client().post(
        path, {"password1": "a brand new passphrase", "password2": "a brand new passphrase"}
    )

    assert not Session.objects.filter(session_key=old_key).exists()
    assert old.get("/projects/").status_code == 302


def test_deactivation_ends_sessions_and_tokens_at_once(admin: User, staff: User) -> None:
    CASES.add("deactivation")
    laptop, phone = signed_in(staff), signed_in(staff)
    keys = {laptop.session.session_key, phone.session.session_key}
    token = token_create(user=staff)
    admin_client = Client()
    admin_client.force_login(admin)
    admin_key = admin_client.session.session_key

    assert admin_client.post(f"/settings/users/{staff.pk}/deactivate").status_code == 302

    assert not Session.objects.filter(session_key__in=keys).exists()
    assert Session.objects.filter(session_key=admin_key).exists()
    assert laptop.get("/projects/").status_code == 302
    assert phone.get("/api/customers").status_code == 401
    assert Api(token).get("/api/customers").status == 401


def test_a_bearer_token_request_is_given_no_session(staff: User, settings: Any) -> None:
    """A script calling the API with a token and no cookie jar would otherwise write a
    new session row on every request."""
    api = Api(token_create(user=staff))
    for _ in range(3):
        assert api.get("/api/projects").status == 200
    assert Session.objects.count() == 0
    assert settings.SESSION_COOKIE_NAME not in api.client.cookies
