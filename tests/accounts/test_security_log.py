"""The security log: each kind of line, written by the real action that causes it, with
who, whom, the address and browser, and never a secret; read by admins only, on a page
and at /api/security-log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD, UserFactory, enable_two_factor, totp_code
from tests.figures import record
from tests.helpers import REFUSED_ADMIN_ONLY, Api, unchanged
from tranche.accounts.models import Role, SecurityEvent, SecurityEventKind, User
from tranche.accounts.security import security_event

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) " + "VeryLongToken/1.0 " * 30
NEW_PASSWORD = "a brand new passphrase"


def lines(kind: SecurityEventKind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(kind=kind).order_by("at", "id"))


def only(kind: SecurityEventKind) -> SecurityEvent:
    found = lines(kind)
    assert len(found) == 1, [e.detail for e in found]
    return found[0]


def browser(user: User | None = None) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.9")
    if user is not None:
        client.force_login(user)
    return client


# --- one kind at a time --------------------------------------------------------------------


def test_a_sign_in_is_logged_with_address_and_a_shortened_browser(staff: User) -> None:
    client = browser()
    client.post("/login/", {"username": staff.email, "password": PASSWORD})

    line = only(SecurityEventKind.SIGN_IN)
    assert (line.actor, line.target, line.actor_email) == (staff, staff, staff.email)
    assert line.ip_address == "203.0.113.9"
    assert line.user_agent == " ".join(BROWSER.split())[:200]
    assert line.detail == "Signed in with the password."
    assert timezone.now() - line.at < timedelta(seconds=30)


def test_a_wrong_password_is_logged_against_the_account(staff: User) -> None:
    browser().post("/login/", {"username": staff.email, "password": "guess"})

    line = only(SecurityEventKind.SIGN_IN_FAILED)
    assert (line.actor, line.target, line.detail) == (None, staff, "Wrong password.")


def test_an_unknown_email_is_logged_without_what_was_typed() -> None:
    """People type their password into the email field: it must not land in the log."""
    typed = "hunter2-my-password"
    browser().post("/login/", {"username": typed, "password": "x"})

    line = only(SecurityEventKind.SIGN_IN_FAILED)
    assert (line.target, line.target_email) == (None, "")
    assert typed not in line.detail


def test_a_deactivated_account_signing_in_is_logged(admin: User, staff: User) -> None:
    staff.is_active = False
    staff.save(update_fields=["is_active"])
    browser().post("/login/", {"username": staff.email, "password": PASSWORD})
    assert only(SecurityEventKind.SIGN_IN_FAILED).detail == "The account is deactivated."


def test_the_lockout_is_logged_once_and_attempts_during_it_as_refused(
    staff: User, settings: Any
) -> None:
    client = browser()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": staff.email, "password": "guess"})
    client.post("/login/", {"username": staff.email, "password": PASSWORD})

    lockout = only(SecurityEventKind.LOCKOUT)
    assert lockout.target == staff
    assert (
        lockout.detail
        == f"Locked out after {settings.AXES_FAILURE_LIMIT} failed sign-ins from this address."
    )
    failed = [e.detail for e in lines(SecurityEventKind.SIGN_IN_FAILED)]
    assert failed == ["Wrong password."] * (settings.AXES_FAILURE_LIMIT - 1) + [
        "Refused: this email is locked out at this address."
    ]
    assert lines(SecurityEventKind.SIGN_IN) == []


def test_a_changed_password_is_logged(staff: User) -> None:
    client = browser()
    client.post("/login/", {"username": staff.email, "password": PASSWORD})
    client.post(
        "/account/password",
        {"current": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    line = only(SecurityEventKind.PASSWORD_CHANGED)
    assert line.actor == staff
    assert line.detail == "Changed on the account page; 0 other sessions ended."


def test_role_changes_deactivation_and_reactivation_are_logged(admin: User, staff: User) -> None:
    client = browser(admin)
    client.post(f"/settings/users/{staff.pk}/role", {"role": "admin"})
    client.post(f"/settings/users/{staff.pk}/role", {"role": "staff"})
    client.post(f"/settings/users/{staff.pk}/deactivate")
    client.post(f"/settings/users/{staff.pk}/reactivate")

    roles = lines(SecurityEventKind.ROLE_CHANGED)
    assert [(e.actor, e.target, e.detail) for e in roles] == [
        (admin, staff, "Staff → Admin."),
        (admin, staff, "Admin → Staff."),
    ]
    off = only(SecurityEventKind.USER_DEACTIVATED)
    assert (off.actor, off.target) == (admin, staff)
    assert off.detail == "0 sessions ended, 0 API tokens revoked."
    on = only(SecurityEventKind.USER_REACTIVATED)
    assert (on.actor, on.target, on.ip_address) == (admin, staff, "203.0.113.9")


def test_deactivating_a_customer_user_is_logged(admin: User, alice: User) -> None:
    browser(admin).post(f"/customers/{alice.customer_id}/users/{alice.pk}/deactivate")
    line = only(SecurityEventKind.USER_DEACTIVATED)
    assert (line.actor, line.target) == (admin, alice)


def test_token_creation_and_revocation_are_logged_without_the_token(staff: User) -> None:
    made = Api(None).post("/api/auth/token", {"email": staff.email, "password": PASSWORD})
    token = made.body["token"]
    assert Api(token).delete("/api/auth/token").status == 204

    created = only(SecurityEventKind.TOKEN_CREATED)
    assert created.target == staff
    assert created.detail == (
        f"Token {token[:12]}… created by signing in to the API with the password."
    )
    revoked = only(SecurityEventKind.TOKEN_REVOKED)
    assert (revoked.actor, revoked.target, revoked.detail) == (
        staff,
        staff,
        f"Token {token[:12]}… revoked.",
    )
    assert token not in created.detail + revoked.detail


def test_a_token_from_the_command_line_is_logged_without_an_actor(staff: User, capsys: Any) -> None:
    call_command("token", staff.email)
    token = capsys.readouterr().out.strip()
    line = only(SecurityEventKind.TOKEN_CREATED)
    assert (line.actor, line.target, line.ip_address) == (None, staff, None)
    assert line.detail == f"Token {token[:12]}… created with the `tranche token` command."


def test_the_accounting_export_is_logged_from_the_api_and_the_page(
    as_: Any, admin: User, staff: User
) -> None:
    api = as_("staff")
    response = api.client.get(
        "/api/exports/accounting?date_from=2026-10-01&date_to=2026-10-31&format=json",
        headers=api.headers,
    )
    assert response.status_code == 200
    page = browser(admin).get(
        "/financials/accounting-export?date_from=2026-09-01&date_to=2026-09-30&format=csv"
    )
    assert page.status_code == 200
    b"".join(page.streaming_content)  # type: ignore[attr-defined]

    exports = lines(SecurityEventKind.EXPORT)
    assert [(e.actor, e.detail) for e in exports] == [
        (staff, "Accounting export 2026-10-01 to 2026-10-31 as JSON."),
        (admin, "Accounting export 2026-09-01 to 2026-09-30 as CSV."),
    ]


def test_the_invoice_list_export_is_logged(staff: User) -> None:
    assert browser(staff).get("/financials/export.csv?status=paid").status_code == 200
    line = only(SecurityEventKind.EXPORT)
    assert (line.actor, line.detail) == (staff, "Invoice list exported as CSV (status=paid).")


def test_a_refused_export_is_not_logged(alice: User) -> None:
    browser(alice).get("/financials/export.csv")
    Api(None).get("/api/exports/accounting?date_from=2026-10-01&date_to=2026-10-31")
    assert lines(SecurityEventKind.EXPORT) == []


# --- every kind, from real actions, and nothing secret --------------------------------------


def test_every_kind_is_written_by_a_real_action_and_none_holds_a_secret(
    admin: User, staff: User, alice: User, settings: Any
) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    secrets: list[str] = [PASSWORD, NEW_PASSWORD]
    other = UserFactory.create(email="other@tranche.example", role=Role.STAFF)

    # Sign-ins, failures, a lockout.
    browser().post("/login/", {"username": staff.email, "password": PASSWORD})
    locker = browser()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        locker.post("/login/", {"username": other.email, "password": "guess"})
    # Two-factor: enrolment, a wrong code, a recovery code, new codes, turning it off.
    device, codes = enable_two_factor(admin)
    secrets += codes
    admin_client = browser()
    admin_client.post("/login/", {"username": admin.email, "password": PASSWORD})
    wrong = "000000" if totp_code(device.bin_key, steps_ahead=1) != "000000" else "111111"
    admin_client.post("/login/code/", {"code": wrong})
    admin_client.post("/login/code/", {"code": codes[0]})
    admin_client.post("/settings/security/two-factor", {"required": "on"})
    admin_client.post("/settings/security/two-factor", {})
    fresh = admin_client.post("/account/two-factor/codes", {"proof": PASSWORD})
    assert fresh.status_code == 200
    staff_client = browser(staff)
    enable_two_factor(staff)
    admin_client.post(f"/settings/security/people/{staff.pk}/reset-two-factor")
    # The password, roles, deactivation.
    alice_client = browser()
    alice_client.post("/login/", {"username": alice.email, "password": PASSWORD})
    alice_client.post(
        "/account/password",
        {"current": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    admin_client.post(f"/settings/users/{other.pk}/role", {"role": "admin"})
    admin_client.post(f"/settings/users/{other.pk}/deactivate")
    admin_client.post(f"/settings/users/{other.pk}/reactivate")
    # Tokens and exports.
    token = Api(None).post("/api/auth/token", {"email": alice.email, "password": NEW_PASSWORD})
    secrets.append(token.body["token"])
    Api(token.body["token"]).delete("/api/auth/token")
    staff_client.get("/financials/export.csv")

    written = set(SecurityEvent.objects.values_list("kind", flat=True))
    assert written == set(SecurityEventKind.values)
    for event in SecurityEvent.objects.all():
        text = " ".join(
            str(v) for v in (event.detail, event.actor_email, event.target_email, event.user_agent)
        )
        for secret in secrets:
            assert secret not in text, (event.kind, secret)
            assert secret.replace("-", "") not in text, (event.kind, secret)
    record(
        "auth",
        security_log_kinds=len(written),
        security_log_kind_names=sorted(written),
        security_log_lines_checked_for_secrets=SecurityEvent.objects.count(),
    )


# --- who may read it --------------------------------------------------------------------------


def test_admins_read_the_log_newest_first_in_pages(as_: Any, admin: User, staff: User) -> None:
    start = timezone.now() - timedelta(hours=1)
    for minute in range(5):
        security_event(
            kind=SecurityEventKind.SIGN_IN,
            actor=staff,
            detail=f"Signed in #{minute}.",
            now=start + timedelta(minutes=minute),
        )
    security_event(kind=SecurityEventKind.EXPORT, actor=admin, detail="Export.", now=start)

    first = as_("admin").get("/api/security-log?limit=2&kind=sign_in")
    second = as_("admin").get("/api/security-log?limit=2&offset=2&kind=sign_in")

    assert first.status == 200
    assert first.body["count"] == 5
    assert [e["detail"] for e in first.body["items"]] == ["Signed in #4.", "Signed in #3."]
    assert [e["detail"] for e in second.body["items"]] == ["Signed in #2.", "Signed in #1."]
    item = first.body["items"][0]
    assert set(item) == {
        "id", "at", "kind", "actor_id", "actor_email", "target_id", "target_email",
        "ip_address", "user_agent", "detail",
    }  # fmt: skip
    assert (item["actor_email"], item["target_id"]) == (staff.email, staff.pk)
    about_admin = as_("admin").get(f"/api/security-log?target_id={admin.pk}")
    assert "export" in [e["kind"] for e in about_admin.body["items"]]
    assert {e["target_id"] for e in about_admin.body["items"]} == {admin.pk}


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_only_admins_read_the_log_through_the_api(
    as_: Any, persona: str, status: int, code: str
) -> None:
    security_event(kind=SecurityEventKind.EXPORT, detail="Export.")
    api = as_(persona)
    with unchanged():
        refused = api.get("/api/security-log")
    assert (refused.status, refused.body["code"]) == (status, code)


def test_an_unknown_kind_is_refused(as_: Any) -> None:
    assert as_("admin").get("/api/security-log?kind=nonsense").status == 422


def test_the_log_page_is_for_admins(admin: User, staff: User, alice: User) -> None:
    security_event(kind=SecurityEventKind.EXPORT, actor=staff, detail="Accounting export.")
    security_event(kind=SecurityEventKind.SIGN_IN, actor=staff, detail="Signed in.")

    page = browser(admin).get("/settings/security/log/?kind=export")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Accounting export." in html
    assert "Signed in." not in html
    assert browser(staff).get("/settings/security/log/").status_code == 403
    assert browser(alice).get("/settings/security/log/").status_code == 404
    assert Client().get("/settings/security/log/").status_code == 302


def test_the_security_settings_page_lists_who_uses_two_factor(admin: User, staff: User) -> None:
    assert browser(staff).get("/settings/security/").status_code == 403
    enable_two_factor(staff)
    page = browser(admin).get("/settings/security/")
    assert page.status_code == 200
    assert f"Reset two-factor of {staff.email}" in page.content.decode()
