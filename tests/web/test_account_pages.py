"""Everyone's own account: profile, changing the password, and forgetting it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import User
from tranche.notifications.invitations import password_reset_request
from tranche.notifications.models import OutboxEmail

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase"
RESET_ANSWER = "If an account uses that address, we have emailed it a link"


def messages_of(page: str) -> str:
    start = page.index('id="messages"')
    return page[start : page.index("</div>", start)]


@pytest.mark.parametrize("persona", ["admin", "staff", "alice"])
def test_everyone_sees_their_account(request: Any, persona: str) -> None:
    user = request.getfixturevalue(persona)
    page = signed_in(user).get("/account/").content.decode()
    assert "<h1>Your account</h1>" in page
    assert user.email in page
    assert "Change password" in page


def test_a_customer_sees_which_customer_they_belong_to(alice: User) -> None:
    assert "Portal user of Acme Builders" in signed_in(alice).get("/account/").content.decode()


def test_anonymous_visitors_are_sent_to_sign_in() -> None:
    assert Client().get("/account/")["Location"].startswith("/login/")


def test_a_person_changes_their_name(alice: User) -> None:
    browser = signed_in(alice)
    response = browser.post("/account/profile", {"full_name": "  Alice   Doe "})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.full_name == "Alice Doe"
    page = browser.get("/account/").content.decode()
    assert "Your profile is saved." in messages_of(page)
    assert 'value="Alice Doe"' in page


def test_a_person_changes_their_password_and_stays_signed_in(alice: User) -> None:
    browser = signed_in(alice)
    response = browser.post(
        "/account/password",
        {"current": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    page = browser.get("/account/")
    assert page.status_code == 200
    assert "Your password is changed." in messages_of(page.content.decode())
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    ("form", "field", "sentence"),
    [
        (
            {"current": "wrong", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
            "current",
            "Your current password is not right.",
        ),
        (
            {"current": PASSWORD, "password1": NEW_PASSWORD, "password2": "something else"},
            "password2",
            "The two new passwords differ: type the same one twice.",
        ),
        (
            {"current": PASSWORD, "password1": "short", "password2": "short"},
            "password1",
            "This password is too short.",
        ),
        (
            {"current": PASSWORD, "password1": "password123", "password2": "password123"},
            "password1",
            "This password is too common.",
        ),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    alice: User, form: dict[str, str], field: str, sentence: str
) -> None:
    browser = signed_in(alice)
    with unchanged():
        response = browser.post("/account/password", form)
    assert response.status_code == 422
    page = response.content.decode()
    assert re.search(rf'id="id_{field}-error"><li>[^<]*{re.escape(sentence)}', page), page
    assert sentence in messages_of(page)


def test_the_sign_in_page_links_to_forgot_password() -> None:
    page = Client().get("/login/").content.decode()
    assert '<a href="/account/forgot-password/">Forgot your password?</a>' in page


def test_forgot_password_emails_a_link_that_sets_the_password_and_signs_in(
    alice: User, after_commit: Any
) -> None:
    guest = Client()
    with after_commit(execute=True):
        response = guest.post("/account/forgot-password/", {"email": " Alice@Acme.example "})
    assert response["Location"] == "/login/"
    assert RESET_ANSWER in messages_of(guest.get("/login/").content.decode())
    email = OutboxEmail.objects.get()
    assert (email.kind, email.to) == ("password_reset", "alice@acme.example")
    assert "expires in 2 hours" in email.body_text
    link = re.search(r"https?://\S+?(/account/set-password/\S+/)", email.body_text)
    assert link
    path = link.group(1)

    assert guest.get(path).status_code == 200
    mismatch = guest.post(path, {"password1": NEW_PASSWORD, "password2": "nope nope nope"})
    assert mismatch.status_code == 422
    assert "The two new passwords differ" in mismatch.content.decode()
    done = guest.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done["Location"] == "/"
    assert "alice@acme.example" in guest.get("/").content.decode()
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert Client().get(path).status_code == 410  # used once, dead


def test_forgot_password_answers_the_same_for_an_unknown_address(alice: User) -> None:
    guest = Client()
    with unchanged():
        response = guest.post("/account/forgot-password/", {"email": "nobody@nowhere.example"})
    assert response["Location"] == "/login/"
    assert RESET_ANSWER in messages_of(guest.get("/login/").content.decode())


def test_a_deactivated_user_gets_no_reset_email(alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_active=False)
    with unchanged():
        Client().post("/account/forgot-password/", {"email": alice.email})


def test_the_same_address_is_emailed_at_most_once_a_minute(alice: User) -> None:
    now = timezone.now()
    assert password_reset_request(email=alice.email, now=now)
    with unchanged():
        assert not password_reset_request(email=alice.email, now=now + timedelta(seconds=1))
        assert not password_reset_request(email=alice.email, now=now + timedelta(seconds=59))
    assert password_reset_request(email=alice.email, now=now + timedelta(seconds=61))
    assert OutboxEmail.objects.filter(to=alice.email).count() == 2


def test_the_page_asks_again_for_an_empty_address() -> None:
    response = Client().post("/account/forgot-password/", {"email": ""})
    assert response.status_code == 422
    assert "Enter the email address you sign in with." in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/account/set-password/MQ/abc-def/",
        "/account/set-password/not-base64!/x-y/",
        "/account/set-password/OTk5OTk5OTk5OTk5OTk5OTk5OTk5/x-y/",
    ],
)
def test_a_made_up_link_is_refused(alice: User, path: str) -> None:
    with unchanged():
        response = Client().post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 410
    assert "Email me a new link" in response.content.decode()
