"""Two-factor authentication for staff and admins: enrolment, the second sign-in step,
recovery codes, turning it off, the admins' requirement, and API tokens.

Codes are computed here from the device's secret, as an authenticator app would."""

from __future__ import annotations

import re
from base64 import b32decode
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, enable_two_factor, totp_code
from tests.figures import record
from tests.helpers import Api, unchanged
from tranche.accounts.links import Purpose, set_password_url
from tranche.accounts.models import ApiToken, Business, SecurityEvent, SecurityEventKind, User
from tranche.accounts.two_factor import PENDING_KEY, RECOVERY_CODE_COUNT

pytestmark = pytest.mark.django_db

FLOWS: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    record("auth", two_factor_flows_tested=len(FLOWS), two_factor_flows=sorted(FLOWS))


def flow(name: str) -> None:
    FLOWS.add(name)


@pytest.fixture
def no_throttle(settings: Any) -> None:
    """django-otp waits 1 s after a wrong code (then 2, 4 …) before it checks the next;
    tests that give a wrong code then a right one at once turn that wait off."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def signed_in_as(client: Client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


def password_step(client: Client, user: User, next_: str = "/") -> Any:
    return client.post("/login/", {"username": user.email, "password": PASSWORD, "next": next_})


def sign_in_with_code(client: Client, user: User, code: str, next_: str = "/") -> Any:
    assert password_step(client, user, next_).status_code == 302
    return client.post("/login/code/", {"code": code, "next": next_})


def kinds(user: User) -> list[str]:
    return list(
        SecurityEvent.objects.filter(target=user)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )


# --- enrolment ----------------------------------------------------------------------------


def test_staff_member_sets_up_an_authenticator_and_gets_ten_recovery_codes(staff: User) -> None:
    flow("enrol")
    client = Client()
    client.force_login(staff)

    page = client.get("/account/two-factor/enrol/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html  # the QR code, drawn inline
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html)
    assert secret is not None
    key = b32decode(secret.group(1).replace(" ", ""))
    # Reloading the page shows the same secret: the app already scanned it.
    assert secret.group(1) in client.get("/account/two-factor/enrol/").content.decode()

    done = client.post("/account/two-factor/enrol/", {"code": totp_code(key)})

    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", done.content.decode())
    assert len(codes) == RECOVERY_CODE_COUNT == 10
    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed
    assert device.bin_key == key
    # Only hashes are kept: no code is readable in the database.
    stored = set(StaticToken.objects.filter(device__user=staff).values_list("token", flat=True))
    assert len(stored) == 10
    assert not stored & ({c.replace("-", "") for c in codes} | set(codes))
    assert kinds(staff) == [SecurityEventKind.TWO_FACTOR_ENABLED]
    # The session that proved the device counts as verified: it stays signed in.
    assert client.get("/account/").status_code == 200


def test_a_wrong_code_at_enrolment_turns_nothing_on(staff: User) -> None:
    flow("enrol_wrong_code")
    client = Client()
    client.force_login(staff)
    client.get("/account/two-factor/enrol/")
    device = TOTPDevice.objects.get(user=staff)

    good = {totp_code(device.bin_key, steps_ahead=step) for step in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in good)

    with unchanged():
        refused = client.post("/account/two-factor/enrol/", {"code": wrong})

    assert refused.status_code == 422
    assert "not right" in refused.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert not StaticDevice.objects.filter(user=staff).exists()
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.TWO_FACTOR_ENABLED).count() == 0


def test_customers_are_not_offered_two_factor(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    with unchanged():
        assert client.get("/account/two-factor/").status_code == 404
        assert client.get("/account/two-factor/enrol/").status_code == 404
    assert not TOTPDevice.objects.exists()
    assert "Two-factor" not in client.get("/account/").content.decode()


# --- signing in with a code ----------------------------------------------------------------


def test_the_password_alone_does_not_sign_in_someone_with_two_factor(staff: User) -> None:
    flow("password_step_only")
    _device, _ = enable_two_factor(staff)
    client = Client()

    response = password_step(client, staff, "/projects/")

    assert response.status_code == 302
    assert response["Location"] == "/login/code/?next=%2Fprojects%2F"
    assert signed_in_as(client) is None
    assert client.get("/api/customers").status_code == 401
    assert client.get("/projects/").status_code == 302


def test_sign_in_with_the_password_and_a_code_from_the_app(staff: User) -> None:
    flow("sign_in_totp")
    device, _ = enable_two_factor(staff)
    client = Client()

    response = sign_in_with_code(
        client, staff, totp_code(device.bin_key, steps_ahead=1), "/projects/"
    )

    assert response.status_code == 302
    assert response["Location"] == "/projects/"
    assert signed_in_as(client) == staff.pk
    assert client.session["otp_device_id"] == device.persistent_id
    assert client.get("/api/customers").status_code == 200
    event = SecurityEvent.objects.get(kind=SecurityEventKind.SIGN_IN)
    assert event.actor == staff
    assert "authenticator code" in event.detail


def test_a_code_from_the_app_works_once(staff: User) -> None:
    flow("totp_replay_refused")
    device, _ = enable_two_factor(staff)
    code = totp_code(device.bin_key, steps_ahead=1)
    assert sign_in_with_code(Client(), staff, code).status_code == 302

    thief = Client()
    refused = sign_in_with_code(thief, staff, code)

    assert refused.status_code == 422
    assert signed_in_as(thief) is None


def test_a_recovery_code_signs_in_once(staff: User, settings: Any) -> None:
    flow("sign_in_recovery_code")
    _, codes = enable_two_factor(staff)
    client = Client()

    response = sign_in_with_code(client, staff, codes[3].upper().replace("-", " "))

    assert response.status_code == 302
    assert signed_in_as(client) == staff.pk
    assert StaticToken.objects.filter(device__user=staff).count() == 9
    used = SecurityEvent.objects.get(kind=SecurityEventKind.RECOVERY_CODE_USED)
    assert used.target == staff
    assert "9 left" in used.detail
    assert codes[3] not in used.detail

    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    again = Client()
    assert sign_in_with_code(again, staff, codes[3]).status_code == 422
    assert signed_in_as(again) is None
    assert StaticToken.objects.filter(device__user=staff).count() == 9


def test_a_wrong_code_is_refused_and_the_next_is_checked_only_after_a_wait(staff: User) -> None:
    flow("throttled")
    device, _ = enable_two_factor(staff)
    client = Client()

    wrong = sign_in_with_code(
        client, staff, "123456" if totp_code(device.bin_key) != "123456" else "654321"
    )
    assert wrong.status_code == 422
    right_too_soon = client.post("/login/code/", {"code": totp_code(device.bin_key, steps_ahead=1)})

    assert right_too_soon.status_code == 429
    assert "wait" in right_too_soon.content.decode()
    assert signed_in_as(client) is None
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.TWO_FACTOR_FAILED).count() == 1


def test_five_wrong_codes_send_you_back_to_the_password(staff: User, no_throttle: None) -> None:
    flow("too_many_wrong_codes")
    device, _ = enable_two_factor(staff)
    client = Client()
    assert password_step(client, staff).status_code == 302
    good = {totp_code(device.bin_key, steps_ahead=s) for s in (-1, 0, 1)}
    wrong = next(c for c in ("111111", "222222", "333333", "444444") if c not in good)

    answers = [client.post("/login/code/", {"code": wrong}).status_code for _ in range(5)]

    assert answers == [422, 422, 422, 422, 302]
    assert PENDING_KEY not in client.session
    # The right code is no use now: the password must be given again.
    late = client.post("/login/code/", {"code": totp_code(device.bin_key, steps_ahead=1)})
    assert late.status_code == 302
    assert late["Location"] == "/login/"
    assert signed_in_as(client) is None


def test_the_code_step_expires(staff: User, settings: Any) -> None:
    flow("code_step_expires")
    device, _ = enable_two_factor(staff)
    client = Client()
    assert password_step(client, staff).status_code == 302
    session = client.session
    pending = session[PENDING_KEY]
    pending["at"] = (
        timezone.now() - timedelta(minutes=settings.TWO_FACTOR_PENDING_MINUTES, seconds=1)
    ).timestamp()
    session[PENDING_KEY] = pending
    session.save()

    response = client.post("/login/code/", {"code": totp_code(device.bin_key, steps_ahead=1)})

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert signed_in_as(client) is None


def test_the_code_page_without_a_password_first_is_the_sign_in_page(staff: User) -> None:
    device, _ = enable_two_factor(staff)
    client = Client()
    response = client.post("/login/code/", {"code": totp_code(device.bin_key, steps_ahead=1)})
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert signed_in_as(client) is None


def test_a_session_signed_in_before_two_factor_was_set_up_elsewhere_ends(staff: User) -> None:
    flow("unverified_session_ended")
    laptop, phone = Client(), Client()
    assert password_step(laptop, staff).status_code == 302
    assert password_step(phone, staff).status_code == 302
    assert phone.get("/api/customers").status_code == 200

    enable_two_factor(staff)  # on the laptop, say

    assert phone.get("/projects/").status_code == 302
    assert signed_in_as(phone) is None
    assert phone.get("/api/customers").status_code == 401


def test_a_password_reset_link_does_not_skip_the_code(staff: User) -> None:
    flow("reset_link_asks_for_code")
    device, _ = enable_two_factor(staff)
    client = Client()
    link = set_password_url(staff, purpose=Purpose.PASSWORD_RESET, now=timezone.now())
    link = link.split("127.0.0.1:8000", 1)[-1]

    response = client.post(
        link, {"password1": "a brand new passphrase", "password2": "a brand new passphrase"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/login/code/"
    assert signed_in_as(client) is None
    finish = client.post("/login/code/", {"code": totp_code(device.bin_key, steps_ahead=1)})
    assert finish.status_code == 302
    assert signed_in_as(client) == staff.pk


# --- turning it off, new recovery codes ----------------------------------------------------


def verified_client(user: User, device: TOTPDevice) -> Client:
    client = Client()
    assert (
        sign_in_with_code(client, user, totp_code(device.bin_key, steps_ahead=1)).status_code == 302
    )
    return client


def test_turning_two_factor_off_asks_for_the_password_or_a_code(
    staff: User, no_throttle: None
) -> None:
    flow("disable")
    device, _ = enable_two_factor(staff)
    client = verified_client(staff, device)

    with unchanged():
        refused = client.post("/account/two-factor/disable", {"proof": "not my password"})
    assert refused.status_code == 302
    assert TOTPDevice.objects.filter(user=staff).exists()

    done = client.post("/account/two-factor/disable", {"proof": PASSWORD})

    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=staff).exists()
    assert not StaticDevice.objects.filter(user=staff).exists()
    assert (
        SecurityEvent.objects.filter(
            kind=SecurityEventKind.TWO_FACTOR_DISABLED, target=staff
        ).count()
        == 1
    )
    # Next time the password is enough.
    assert password_step(Client(), staff).status_code == 302


def test_new_recovery_codes_replace_the_old_ones(staff: User, no_throttle: None) -> None:
    flow("regenerate_codes")
    device, old = enable_two_factor(staff)
    client = verified_client(staff, device)

    # A recovery code proves it is them (the app's current code was just used to sign in).
    page = client.post("/account/two-factor/codes", {"proof": old[5]})

    assert page.status_code == 200
    new = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", page.content.decode())
    assert len(new) == 10
    assert not set(new) & set(old)
    assert sign_in_with_code(Client(), staff, old[0]).status_code == 422
    assert sign_in_with_code(Client(), staff, new[0]).status_code == 302
    assert (
        SecurityEvent.objects.filter(kind=SecurityEventKind.RECOVERY_CODES_REGENERATED).count() == 1
    )


def test_an_admin_resets_a_colleagues_two_factor(admin: User, staff: User) -> None:
    flow("admin_reset")
    enable_two_factor(staff)
    client = Client()
    client.force_login(admin)

    assert client.post(f"/settings/security/people/{staff.pk}/reset-two-factor").status_code == 302

    assert not TOTPDevice.objects.filter(user=staff).exists()
    event = SecurityEvent.objects.get(kind=SecurityEventKind.TWO_FACTOR_DISABLED)
    assert (event.actor, event.target) == (admin, staff)
    staff_client = Client()
    staff_client.force_login(staff)
    with unchanged():
        assert (
            staff_client.post(f"/settings/security/people/{admin.pk}/reset-two-factor").status_code
            == 403
        )


# --- required for admins ---------------------------------------------------------------------


def require_for_admins() -> None:
    Business.objects.update_or_create(pk=1, defaults={"require_two_factor_for_admins": True})


def test_an_admin_cannot_require_two_factor_before_using_it(admin: User) -> None:
    client = Client()
    client.force_login(admin)
    with unchanged():
        client.post("/settings/security/two-factor", {"required": "on"})
    assert not Business.objects.filter(require_two_factor_for_admins=True).exists()


def test_an_admin_with_two_factor_makes_it_required(admin: User, staff: User) -> None:
    flow("require_setting")
    device, _ = enable_two_factor(admin)
    client = verified_client(admin, device)
    staff_client = Client()
    staff_client.force_login(staff)
    with unchanged():
        assert (
            staff_client.post("/settings/security/two-factor", {"required": "on"}).status_code
            == 403
        )

    assert client.post("/settings/security/two-factor", {"required": "on"}).status_code == 302

    assert Business.objects.get(pk=1).require_two_factor_for_admins
    event = SecurityEvent.objects.get(kind=SecurityEventKind.SETTING_CHANGED)
    assert event.actor == admin
    assert "required" in event.detail


def test_an_admin_without_two_factor_can_only_set_it_up_when_required(admin: User) -> None:
    flow("required_admin_enrols")
    require_for_admins()
    client = Client()
    assert password_step(client, admin, "/financials/").status_code == 302
    assert signed_in_as(client) == admin.pk

    for page in ("/", "/financials/", "/settings/", "/admin/", "/account/"):
        response = client.get(page)
        assert (response.status_code, response["Location"]) == (
            302,
            "/account/two-factor/enrol/",
        ), page
    api = client.get("/api/customers")
    assert api.status_code == 403
    assert api.json()["code"] == "two_factor_enrolment_required"

    enrol = client.get("/account/two-factor/enrol/")
    assert enrol.status_code == 200
    key = TOTPDevice.objects.get(user=admin).bin_key
    assert client.post("/account/two-factor/enrol/", {"code": totp_code(key)}).status_code == 200

    assert client.get("/financials/").status_code == 200
    assert client.get("/api/customers").status_code == 200


def test_signing_out_stays_open_to_an_admin_who_must_enrol(admin: User) -> None:
    require_for_admins()
    client = Client()
    password_step(client, admin)
    assert client.post("/logout/").status_code == 302
    assert signed_in_as(client) is None


def test_staff_are_not_required_to_use_two_factor(staff: User) -> None:
    require_for_admins()
    client = Client()
    password_step(client, staff)
    assert client.get("/projects/").status_code == 200


# --- API tokens --------------------------------------------------------------------------------


def test_a_token_for_someone_with_two_factor_needs_a_code(staff: User, no_throttle: None) -> None:
    flow("token_needs_code")
    device, codes = enable_two_factor(staff)
    api = Api(None)

    with unchanged():
        bare = api.post("/api/auth/token", {"email": staff.email, "password": PASSWORD})
        wrong = api.post(
            "/api/auth/token", {"email": staff.email, "password": PASSWORD, "code": "12345x"}
        )
    assert (bare.status, bare.body["code"]) == (401, "two_factor_required")
    assert (wrong.status, wrong.body["code"]) == (401, "two_factor_code_invalid")

    made = api.post(
        "/api/auth/token",
        {
            "email": staff.email,
            "password": PASSWORD,
            "code": totp_code(device.bin_key, steps_ahead=1),
        },
    )
    assert made.status == 201
    assert Api(made.body["token"]).get("/api/customers").status == 200
    with_recovery = api.post(
        "/api/auth/token", {"email": staff.email, "password": PASSWORD, "code": codes[0]}
    )
    assert with_recovery.status == 201
    assert ApiToken.objects.filter(user=staff).count() == 2
    details = list(
        SecurityEvent.objects.filter(kind=SecurityEventKind.TOKEN_CREATED).values_list(
            "detail", flat=True
        )
    )
    assert details[-2:] == [
        d
        for d in details[-2:]
        if made.body["token"] not in d and with_recovery.body["token"] not in d
    ]


def test_an_admin_who_must_use_two_factor_gets_no_token_without_it(admin: User) -> None:
    flow("token_refused_until_enrolled")
    require_for_admins()
    with unchanged():
        refused = Api(None).post("/api/auth/token", {"email": admin.email, "password": PASSWORD})
    assert (refused.status, refused.body["code"]) == (403, "two_factor_enrolment_required")


def test_signed_in_with_a_recovery_code_you_stay_signed_in_after_making_new_ones(
    staff: User,
) -> None:
    """Regression: new codes once replaced the device that verified the session, and the
    next request signed the person out."""
    flow("regenerate_after_recovery_sign_in")
    _, codes = enable_two_factor(staff)
    client = Client()
    assert sign_in_with_code(client, staff, codes[0]).status_code == 302

    assert client.post("/account/two-factor/codes", {"proof": PASSWORD}).status_code == 200

    assert client.get("/projects/").status_code == 200
    assert signed_in_as(client) == staff.pk
