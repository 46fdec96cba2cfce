"""POST/DELETE /api/auth/token, bearer tokens, session login with CSRF, lockout."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import PASSWORD
from tests.helpers import Api, unchanged
from tranche.accounts.models import ApiToken, User
from tranche.accounts.tokens import hash_token

pytestmark = pytest.mark.django_db


def test_staff_member_exchanges_email_and_password_for_a_token_that_works(staff: User) -> None:
    response = Api(None).post(
        "/api/auth/token", {"email": "Staff@Tranche.example", "password": PASSWORD}
    )

    assert response.status == 201
    token = response.body["token"]
    assert token.startswith("trn_")
    stored = ApiToken.objects.get(user=staff)
    assert stored.token_hash == hash_token(token)
    assert token not in {stored.token_hash, stored.prefix}
    assert Api(token).get("/api/customers").status == 200


def test_revoking_the_token_in_use_makes_it_stop_working(staff: User) -> None:
    token = (
        Api(None)
        .post("/api/auth/token", {"email": staff.email, "password": PASSWORD})
        .body["token"]
    )
    api = Api(token)

    assert api.delete("/api/auth/token").status == 204
    assert ApiToken.objects.get(user=staff).revoked_at is not None
    refused = api.get("/api/customers")
    assert refused.status == 401
    assert refused.body["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "staff@tranche.example", "password": "wrong password"},
        {"email": "nobody@tranche.example", "password": PASSWORD},
    ],
)
def test_wrong_credentials_get_401_and_no_token(staff: User, body: dict[str, str]) -> None:
    with unchanged():
        response = Api(None).post("/api/auth/token", body)
    assert response.status == 401
    assert response.body == {
        "detail": "Email or password is incorrect.",
        "code": "invalid_credentials",
    }


def test_an_inactive_user_gets_no_token(staff: User) -> None:
    staff.is_active = False
    staff.save()
    with unchanged():
        response = Api(None).post("/api/auth/token", {"email": staff.email, "password": PASSWORD})
    assert response.status == 401


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("{not json", 400, "malformed_request"),
        ('{"email": "a@b.example"}', 422, "validation_error"),
        ('{"email": "a@b.example", "password": "x", "remember": true}', 422, "validation_error"),
        ("[]", 422, "validation_error"),
    ],
)
def test_malformed_token_requests_get_a_clear_4xx(
    staff: User, raw: str, status: int, code: str
) -> None:
    with unchanged():
        response = Api(None).post("/api/auth/token", raw=raw)
    assert response.status == status
    assert response.body["code"] == code
    assert response.body["detail"]


def test_repeated_failures_lock_out_that_login_even_with_the_right_password(staff: User) -> None:
    anonymous = Api(None)
    for _ in range(4):
        assert (
            anonymous.post("/api/auth/token", {"email": staff.email, "password": "guess"}).status
            == 401
        )
    fifth = anonymous.post("/api/auth/token", {"email": staff.email, "password": "guess"})
    assert fifth.status == 429

    locked = anonymous.post("/api/auth/token", {"email": staff.email, "password": PASSWORD})

    assert locked.status == 429
    assert locked.body["code"] == "too_many_attempts"
    assert not ApiToken.objects.filter(user=staff).exists()


def test_a_revoked_token_cannot_be_revoked_twice(staff: User) -> None:
    token = (
        Api(None)
        .post("/api/auth/token", {"email": staff.email, "password": PASSWORD})
        .body["token"]
    )
    Api(token).delete("/api/auth/token")
    assert Api(token).delete("/api/auth/token").status == 401


def test_a_bogus_bearer_token_is_401() -> None:
    response = Api("trn_not-a-real-token").get("/api/projects")
    assert response.status == 401
    assert response.body["code"] == "not_authenticated"


def test_session_login_works_for_reads_and_unsafe_methods_need_csrf(staff: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.get("/login/")
    csrf = browser.cookies["csrftoken"].value
    signed_in = browser.post(
        "/login/", {"username": staff.email, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    )
    assert signed_in.status_code == 302

    assert browser.get("/api/customers").status_code == 200
    body = '{"name": "Initech"}'
    with unchanged():
        refused = browser.post("/api/customers", body, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"

    accepted = browser.post(
        "/api/customers",
        body,
        content_type="application/json",
        headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
    )
    assert accepted.status_code == 201


def test_anonymous_unsafe_request_is_401_not_a_csrf_failure() -> None:
    response = Client(enforce_csrf_checks=True).post(
        "/api/customers", "{}", content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_passwords_are_stored_with_argon2(staff: User) -> None:
    assert staff.password.startswith("argon2$")
    assert staff.check_password(PASSWORD)
